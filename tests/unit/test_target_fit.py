"""Desired users shaped to what the target serves and keeps (connector.target.fit)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.keys import Keyring
from connector.known import Digests
from connector.mapping import value_digests
from connector.target.fit import TargetFit, flat, nested, not_kept
from connector.target.schema import declared_schema, fit_user

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ACMIDM = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
RING = Keyring(b"a secret of at least thirty-two bytes, for tests")


def attributes(**extra: Any) -> dict[str, Any]:
    return {
        "externalId": "k1",
        "userName": "jan@gent.be",
        "name": {"givenName": "Jan", "familyName": "Peeters"},
        "displayName": "Jan Peeters",
        "emails": [
            {"value": "jan@gent.be", "type": "work", "primary": True},
            {"value": "jan@ocmw.be", "type": "work"},
        ],
        "active": True,
        f"{ENTERPRISE}:employeeNumber": "E1",
        f"{ACMIDM}:nationalId": "85073003328",
        **extra,
    }


def test_an_extension_the_target_does_not_serve_is_left_out() -> None:
    fit = TargetFit(user_extensions=frozenset({ENTERPRISE.casefold()}))
    fitted = fit.fitted(attributes(), None)
    assert f"{ENTERPRISE}:employeeNumber" in fitted
    assert f"{ACMIDM}:nationalId" not in fitted
    assert fitted["userName"] == "jan@gent.be"


def test_with_nothing_known_everything_is_sent_and_email_types_are_made_distinct() -> None:
    fitted = TargetFit().fitted(attributes(), None)
    assert fitted.keys() == attributes().keys()
    assert [e["type"] for e in fitted["emails"]] == ["work", "other"]


def test_name_formatted_is_sent_where_the_target_requires_it() -> None:
    schemas = [
        {
            "id": CORE_USER,
            "attributes": [
                {"name": "userName", "type": "string"},
                {
                    "name": "name",
                    "type": "complex",
                    "subAttributes": [
                        {"name": "formatted", "type": "string", "required": True},
                        {"name": "givenName", "type": "string"},
                        {"name": "familyName", "type": "string"},
                    ],
                },
                {
                    "name": "emails",
                    "type": "complex",
                    "multiValued": True,
                    "subAttributes": [{"name": "value", "type": "string"}],
                },
                {"name": "active", "type": "boolean"},
            ],
        }
    ]
    fit = TargetFit(user_extensions=frozenset(), declared=declared_schema(schemas))
    fitted = fit.fitted(attributes(), "Jan Peeters")
    assert fitted["name"]["formatted"] == "Jan Peeters"
    assert fitted["emails"] == [{"value": "jan@gent.be"}, {"value": "jan@ocmw.be"}]
    assert "displayName" not in fitted  # not declared by this target


def test_a_path_the_fit_leaves_out_is_neither_written_nor_removed() -> None:
    everything = TargetFit().fitted(attributes(), None)
    pushed = value_digests(everything, RING)
    core_only = TargetFit(user_extensions=frozenset())
    fitted = core_only.fitted(attributes(), None)
    digests = core_only.carried(value_digests(fitted, RING, pushed), pushed, attributes(), fitted)
    assert digests.get(f"{ACMIDM}:nationalId") == pushed.get(f"{ACMIDM}:nationalId")
    assert digests.get(f"{ENTERPRISE}:employeeNumber") == pushed.get(f"{ENTERPRISE}:employeeNumber")
    assert set(digests) == set(pushed)


def test_a_path_the_mapping_empties_is_still_removed() -> None:
    pushed = value_digests(TargetFit().fitted(attributes(), None), RING)
    emptied = attributes(displayName=None)
    fit = TargetFit()
    fitted = fit.fitted(emptied, None)
    digests = fit.carried(value_digests(fitted, RING, pushed), pushed, emptied, fitted)
    assert "displayName" not in digests


def test_what_an_answer_does_not_hold_as_sent_is_not_kept() -> None:
    sent = flat(nested(TargetFit().fitted(attributes(), None)))
    answer = {
        "id": "1",
        "externalId": "k1",
        "userName": "JAN@GENT.BE",  # normalised: still compared, never "not kept"
        "name": {"givenName": "Jan", "familyName": "Peeters", "formatted": "Jan Peeters"},
        "displayName": "Jan Peeters",
        "emails": [{"value": "jan@gent.be", "primary": True}],
        "active": False,
    }
    assert not_kept(sent, answer) == frozenset(
        {"emails", f"{ENTERPRISE}:employeeNumber", f"{ACMIDM}:nationalId"}
    )


def test_the_fit_changes_its_fingerprint_when_what_is_known_changes() -> None:
    assert TargetFit().fingerprint() == TargetFit().fingerprint()
    assert TargetFit().fingerprint() != TargetFit(not_kept=frozenset({"emails"})).fingerprint()
    assert TargetFit(user_extensions=frozenset()).fingerprint() != TargetFit().fingerprint()


def test_nested_and_flat_are_each_others_inverse() -> None:
    values = attributes()
    assert flat(nested(values)) == values
    assert Digests.of({}).paths == ()


DJANGO_LIKE = [
    {
        "id": CORE_USER,
        "attributes": [
            {"name": "userName"},
            {"name": "name", "type": "complex", "subAttributes": [{"name": "givenName"}]},
            {
                "name": "emails",
                "type": "complex",
                "multiValued": True,
                "subAttributes": [{"name": "value"}, {"name": "primary"}],
            },
            {"name": "active"},
            {"name": "externalId", "mutability": "readOnly"},
        ],
    }
]

emails = st.lists(
    st.fixed_dictionaries(
        {"value": st.emails()},
        optional={"type": st.sampled_from(["work", "home"]), "primary": st.booleans()},
    ),
    max_size=3,
)
mapped = st.fixed_dictionaries(
    {"userName": st.emails(), "active": st.booleans()},
    optional={
        "externalId": st.text(min_size=1, max_size=5),
        "displayName": st.text(max_size=5),
        "name": st.fixed_dictionaries(
            {"givenName": st.text(max_size=3)}, optional={"familyName": st.text(max_size=3)}
        ),
        "emails": emails,
        f"{ENTERPRISE}:employeeNumber": st.text(max_size=3),
        f"{ACMIDM}:nationalId": st.text(max_size=3),
    },
)
FITS = [
    TargetFit(),
    TargetFit(user_extensions=frozenset(), declared=declared_schema(DJANGO_LIKE)),
    TargetFit(user_extensions=frozenset({ENTERPRISE.casefold()})),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(mapped, min_size=1, max_size=6), st.sampled_from(range(len(FITS))))
def test_a_fit_remembered_per_shape_gives_what_the_full_fit_gives(
    people: list[dict[str, Any]], which: int
) -> None:
    fit = FITS[which]
    for attributes in people:
        served = {p: v for p, v in attributes.items() if fit.serves(p)}
        full = flat(fit_user(nested(served), fit.declared, formatted_name="F").payload)
        before = repr(attributes)
        assert fit.fitted(attributes, "F") == full
        assert repr(attributes) == before  # the mapping's values are never changed
