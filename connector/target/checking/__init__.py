"""`check-target`: what a SCIM target announces against what it really does.

One module per area of the target, each holding that area's requests (async functions on a
`Session`) and, below them, its judgement (pure functions: answers in, `Finding`s out):

- `announcements`: /ServiceProviderConfig, /ResourceTypes, /Schemas (what they say is kept as
  `announced.Announced` and `announced.Endpoints` for the other probes);
- `reading`: counts, paging, and the listed resources filters look for;
- `filters`: the filters the connector uses, and `POST /Users/.search`;
- `user_create`, `user_updates`: the throwaway user created, then PATCHed, PUT, and ETags;
- `groups`: the throwaway group, and each form of writing its members;
- `bulk`: one harmless Bulk operation;
- `cleanup`: the throwaway resources deleted, each checked to be gone.

`answer` holds what every judgement reads an answer with, `session` the plumbing of one run
(sending, isolating probes, recording findings), `probe` the order the probes run in, and `job`
the command's job (the profile learned, kept in the state store). The model they fill is
`connector.target.check`.
"""
