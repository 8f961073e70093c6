"""What a target publishes at /Schemas decides what of a User is sent to it (RFC 7643 §7)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scim2_models import EnterpriseUser, User

from connector.target.schema import (
    CORE_USER_SCHEMA,
    Adjustment,
    DeclaredSchema,
    Mutability,
    Reason,
    declared_schema,
    fit_patch_paths,
    fit_user,
    typed_emails,
)

CORE = CORE_USER_SCHEMA
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ACMIDM = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def attribute(
    name: str,
    *sub: dict[str, Any],
    required: bool = False,
    mutability: str = "readWrite",
    multi: bool = False,
    canonical: list[str] | None = None,
) -> dict[str, Any]:
    """One attribute declaration as a server publishes it."""
    declaration: dict[str, Any] = {
        "name": name,
        "type": "complex" if sub else "string",
        "multiValued": multi,
        "required": required,
        "mutability": mutability,
        "returned": "default",
    }
    if sub:
        declaration["subAttributes"] = list(sub)
    if canonical is not None:
        declaration["canonicalValues"] = canonical
    return declaration


def schema(urn: str, *attributes: object) -> dict[str, Any]:
    """One Schema resource."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": urn,
        "attributes": list(attributes),
    }


def listed(*schemas: object) -> dict[str, Any]:
    """A /Schemas answer without totalResults, as some servers send it."""
    return {"schemas": [LIST_RESPONSE], "Resources": list(schemas)}


NAME = attribute("name", attribute("givenName"), attribute("familyName"))
EMAILS = attribute(
    "emails",
    attribute("value"),
    attribute("type", canonical=["work", "home", "other"]),
    attribute("primary"),
    multi=True,
)
CONNECTOR_CORE = (
    attribute("userName", required=True),
    NAME,
    attribute("displayName"),
    EMAILS,
    attribute("active"),
)


def core(*attributes: dict[str, Any]) -> dict[str, Any]:
    """A core User schema: the attributes the connector sends, plus or minus some."""
    return schema(CORE, *attributes)


def connector_user(emails: int = 2) -> dict[str, Any]:
    """A User as the connector builds it (`DesiredUser.resource`): two organisations, two work
    e-mails, the enterprise extension."""
    addresses = [f"ann@org{i}.be" for i in range(emails)]
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": "pk-1",
        "userName": addresses[0] if addresses else "ann",
        "name": {"givenName": "Ann", "familyName": "Peeters"},
        "displayName": "Ann Peeters",
        "emails": [
            {"value": a, "type": "work", **({"primary": True} if i == 0 else {})}
            for i, a in enumerate(addresses)
        ],
        "active": True,
        ENTERPRISE: {"employeeNumber": "E0001", "organization": "Gemeente Gent"},
    }


def fitted(
    answer: object, resource: dict[str, Any] | None = None, formatted: str | None = None
) -> dict[str, Any]:
    """The payload fit_user makes of a user (the connector's) for a target answering `answer`."""
    user = connector_user() if resource is None else resource
    return fit_user(user, declared_schema(answer), formatted_name=formatted).payload


# --- reading /Schemas ----------------------------------------------------------------------


def test_a_list_response_without_total_results_is_read() -> None:
    declared = declared_schema(listed(core(*CONNECTOR_CORE)))
    assert declared.schema(CORE) is not None
    assert declared.attribute(CORE, "emails.type") is not None


def test_the_resources_list_alone_is_read_like_the_whole_list_response() -> None:
    whole = listed(core(*CONNECTOR_CORE), schema(ENTERPRISE, attribute("employeeNumber")))
    assert declared_schema(whole["Resources"]) == declared_schema(whole)


def test_schema_urns_and_attribute_names_are_case_insensitive() -> None:
    declared = declared_schema(
        {"resources": [schema(CORE.upper(), attribute("NAME", attribute("Formatted")))]}
    )
    assert declared.attribute(CORE, "name.formatted") is not None
    assert declared.declares(CORE.lower(), "Name.FORMATTED")
    assert not declared.declares(CORE, "name.givenName")


def test_characteristics_a_declaration_leaves_out_take_the_rfc_defaults() -> None:
    declared = declared_schema(listed(core({"name": "nickName"})))
    nick = declared.attribute(CORE, "nickName")
    assert nick is not None
    assert (nick.required, nick.mutability, nick.multi_valued, nick.sub_attributes) == (
        False,
        Mutability.READ_WRITE,
        False,
        None,
    )


def test_canonical_values_of_email_types_are_known() -> None:
    declared = declared_schema(listed(core(EMAILS)))
    email_type = declared.attribute(CORE, "emails.type")
    assert email_type is not None
    assert email_type.canonical_values == ("work", "home", "other")


def test_a_malformed_schema_entry_is_ignored_and_the_others_are_read() -> None:
    declared = declared_schema(
        listed(
            "not a schema",
            {"id": ENTERPRISE, "attributes": "garbled"},
            {"attributes": [attribute("userName")]},  # no id
            schema(CORE, attribute("userName"), {"type": "string"}, 42, NAME),
        )
    )
    assert [s.urn for s in declared.schemas] == [CORE]
    assert declared.declares(ENTERPRISE, "anything")
    assert [a.name for a in declared.schemas[0].attributes] == ["userName", "name"]


def test_garbled_sub_attributes_leave_every_sub_attribute_declared() -> None:
    declared = declared_schema(
        listed(
            core({"name": "emails", "subAttributes": "?"}, {"name": "name", "subAttributes": []})
        )
    )
    assert declared.declares(CORE, "emails.type")
    assert declared.declares(CORE, "name.anything")


def test_a_schema_declaring_no_attribute_is_taken_as_unpublished() -> None:
    assert declared_schema(listed(core())) == DeclaredSchema.unknown()
    assert fitted(listed(core()), resource=connector_user(emails=1)) == connector_user(emails=1)


def test_an_unknown_mutability_is_read_write() -> None:
    declared = declared_schema(listed(core(attribute("title", mutability="sometimes"))))
    assert declared.writable(CORE, "title")


def test_a_target_without_schemas_declares_nothing_known() -> None:
    for answer in (None, {}, [], "Not Found", {"Resources": None}, {"detail": "404"}):
        assert declared_schema(answer) == DeclaredSchema.unknown()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    *("Resources", "id", "attributes", "name", "subAttributes", "mutability"),
                    *("required", "canonicalValues", "multiValued", CORE, "emails", "type"),
                ]
            )
            | st.text(max_size=3),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(answer=json_values)
def test_no_answer_of_a_target_crashes_reading_or_fitting(answer: object) -> None:
    declared = declared_schema(answer)
    fit_user(connector_user(), declared, formatted_name="Ann Peeters")
    fit_patch_paths(["emails", f"{ENTERPRISE}:employeeNumber", "name.givenName"], declared)


# --- fitting a User --------------------------------------------------------------------------


def test_without_published_schemas_the_user_is_sent_as_built_but_for_email_types() -> None:
    user = connector_user(emails=1)
    for answer in (None, listed(), listed(schema("urn:example:Other", attribute("x")))):
        assert fitted(answer, resource=user) == user


def test_an_attribute_the_target_does_not_declare_is_not_sent() -> None:
    payload = fitted(listed(core(attribute("userName"), NAME, EMAILS, attribute("active"))))
    assert "displayName" not in payload
    assert payload["userName"] == "ann@org0.be"


def test_a_sub_attribute_the_target_does_not_declare_is_dropped_from_every_email() -> None:
    # A server declaring `emails` with only `value` refused `type` and `primary`.
    answer = listed(core(*CONNECTOR_CORE[:3], attribute("emails", attribute("value"), multi=True)))
    user = fit_user(connector_user(), declared_schema(answer), formatted_name=None)
    assert user.payload["emails"] == [{"value": "ann@org0.be"}, {"value": "ann@org1.be"}]
    assert Adjustment("emails.type", Reason.UNDECLARED) in user.adjustments
    assert Adjustment("emails.primary", Reason.UNDECLARED) in user.adjustments
    assert len(user.adjustments) == len(set(user.adjustments))


def test_a_read_only_attribute_is_not_sent() -> None:
    # A server marks externalId readOnly.
    answer = listed(core(*CONNECTOR_CORE, attribute("externalId", mutability="readOnly")))
    user = fit_user(connector_user(), declared_schema(answer), formatted_name=None)
    assert "externalId" not in user.payload
    assert Adjustment("externalId", Reason.READ_ONLY) in user.adjustments


def test_a_read_only_sub_attribute_is_not_sent() -> None:
    name = attribute("name", attribute("givenName"), attribute("familyName", mutability="READONLY"))
    payload = fitted(listed(core(attribute("userName"), name)))
    assert payload["name"] == {"givenName": "Ann"}


def test_external_id_is_sent_to_a_target_whose_core_schema_does_not_list_it() -> None:
    # RFC 7643 §3.1: externalId is a common attribute, in no schema (§8.7.1 does not list it).
    assert fitted(listed(core(*CONNECTOR_CORE)))["externalId"] == "pk-1"


def test_schemas_and_id_are_never_dropped() -> None:
    user = {**connector_user(), "id": "42"}
    payload = fitted(listed(core(attribute("id", mutability="readOnly"))), resource=user)
    assert payload["schemas"] == [CORE, ENTERPRISE]
    assert payload["id"] == "42"


def test_an_extension_the_target_does_not_publish_is_sent_as_built() -> None:
    user = {**connector_user(), ACMIDM: {"nationalId": "85073003328", "rights": []}}
    user["schemas"] = [*user["schemas"], ACMIDM]
    payload = fitted(listed(core(*CONNECTOR_CORE)), resource=user)
    assert payload[ENTERPRISE] == user[ENTERPRISE]
    assert payload[ACMIDM] == user[ACMIDM]


def test_an_undeclared_extension_attribute_is_dropped_but_the_extension_is_kept() -> None:
    answer = listed(schema(ENTERPRISE.upper(), attribute("EmployeeNumber")))
    user = fit_user(connector_user(), declared_schema(answer), formatted_name=None)
    assert user.payload[ENTERPRISE] == {"employeeNumber": "E0001"}
    assert Adjustment(f"{ENTERPRISE}:organization", Reason.UNDECLARED) in user.adjustments


def test_an_extension_object_is_kept_even_when_none_of_its_attributes_is_declared() -> None:
    payload = fitted(listed(schema(ENTERPRISE, attribute("costCenter"))))
    assert payload[ENTERPRISE] == {}
    assert ENTERPRISE in payload["schemas"]


def test_a_complex_value_left_with_nothing_declared_is_not_sent() -> None:
    name = attribute("name", attribute("middleName"))
    assert "name" not in fitted(listed(core(attribute("userName"), name)))


def test_name_formatted_is_added_when_the_target_requires_it() -> None:
    # A server whose /Schemas marks name.formatted required refused every create without it.
    name = attribute("name", attribute("formatted", required=True), attribute("givenName"))
    answer = listed(core(attribute("userName"), name))
    user = fit_user(connector_user(), declared_schema(answer), formatted_name="Ann Peeters")
    assert user.payload["name"] == {"givenName": "Ann", "formatted": "Ann Peeters"}
    assert Adjustment("name.formatted", Reason.ADDED) in user.adjustments
    assert user.missing_required == ()


def test_name_formatted_is_not_added_when_the_target_declares_it_optional() -> None:
    name = attribute("name", attribute("formatted"), attribute("givenName"))
    payload = fitted(listed(core(name)), formatted="Ann Peeters")
    assert "formatted" not in payload["name"]


def test_name_formatted_is_never_added_when_the_target_does_not_declare_it() -> None:
    for answer in (None, listed(core(*CONNECTOR_CORE)), listed(core({"name": "name"}))):
        assert "formatted" not in fitted(answer, formatted="Ann Peeters")["name"]


def test_name_formatted_is_not_added_when_read_only() -> None:
    formatted = attribute("formatted", mutability="readOnly", required=True)
    name = attribute("name", formatted, attribute("givenName"))
    assert "formatted" not in fitted(listed(core(name)), formatted="Ann Peeters")["name"]


def test_a_name_formatted_already_there_is_kept() -> None:
    user = connector_user()
    user["name"]["formatted"] = "Dr. Ann Peeters"
    name = attribute("name", attribute("formatted"), attribute("givenName"))
    payload = fitted(listed(core(name)), resource=user, formatted="Ann Peeters")
    assert payload["name"]["formatted"] == "Dr. Ann Peeters"


def test_a_required_attribute_the_connector_cannot_fill_is_reported_not_invented() -> None:
    name = attribute("name", attribute("formatted", required=True), attribute("givenName"))
    answer = listed(
        core(*CONNECTOR_CORE[:1], name, attribute("title", required=True)),
        schema(ENTERPRISE, attribute("employeeNumber"), attribute("costCenter", required=True)),
    )
    user = fit_user(connector_user(), declared_schema(answer), formatted_name=None)
    assert user.missing_required == ("name.formatted", "title", f"{ENTERPRISE}:costCenter")
    assert "title" not in user.payload
    assert "costCenter" not in user.payload[ENTERPRISE]


def test_required_sub_attributes_are_reported_once_for_every_email_lacking_them() -> None:
    emails = attribute("emails", attribute("value"), attribute("display", required=True))
    user = fit_user(connector_user(), declared_schema(listed(core(emails))), formatted_name=None)
    assert user.missing_required == ("emails.display",)


def test_server_assigned_and_read_only_required_attributes_are_not_reported_missing() -> None:
    answer = listed(
        core(
            attribute("id", required=True, mutability="readOnly"),
            attribute("meta", required=True),
            attribute("groups", required=True, mutability="readOnly"),
            *CONNECTOR_CORE,
        )
    )
    assert (
        fit_user(connector_user(), declared_schema(answer), formatted_name=None).missing_required
        == ()
    )


def test_an_unpublished_extension_s_requirements_are_not_checked_when_it_is_not_sent() -> None:
    answer = listed(schema(ACMIDM, attribute("nationalId", required=True)))
    user = fit_user(connector_user(), declared_schema(answer), formatted_name=None)
    assert user.missing_required == ()


def test_fit_user_never_mutates_its_input() -> None:
    user = connector_user(emails=3)
    before = copy.deepcopy(user)
    answer = listed(core(attribute("emails", attribute("value"), multi=True)))
    result = fit_user(user, declared_schema(answer), formatted_name="Ann Peeters")
    assert user == before
    result.payload["schemas"].append("changed")
    assert user == before


# --- e-mail types ----------------------------------------------------------------------------


def emails(*types: str | None, primary: int | None = None) -> list[dict[str, Any]]:
    """E-mails of these types (None: no type), one of them primary."""
    return [
        {"value": f"e{i}@x.be"}
        | ({"type": t} if t is not None else {})
        | ({"primary": True} if i == primary else {})
        for i, t in enumerate(types)
    ]


def types_of(entries: list[dict[str, Any]]) -> list[str | None]:
    """The `type` of each e-mail, in order."""
    return [e.get("type") for e in entries]


def test_of_two_work_emails_the_primary_keeps_work_and_the_other_becomes_other() -> None:
    # A server refused "emails cannot contain duplicate defined types".
    assert types_of(typed_emails(emails("work", "work", primary=1))) == ["other", "work"]


def test_without_a_primary_the_first_email_keeps_its_type() -> None:
    assert types_of(typed_emails(emails("work", "work"))) == ["work", "other"]


def test_emails_of_different_types_are_left_alone() -> None:
    entries = emails("work", "home", None, primary=1)
    assert typed_emails(entries) == entries


def test_types_are_compared_case_insensitively() -> None:
    assert types_of(typed_emails(emails("work", "Work"))) == ["work", "other"]


def test_a_type_held_by_another_email_is_not_given_twice() -> None:
    assert types_of(typed_emails(emails("work", "other", "work"))) == ["work", "other", None]


def test_when_the_canonical_values_lack_other_the_first_free_one_is_used() -> None:
    canonical = ["work", "home"]
    assert types_of(typed_emails(emails("work", "work"), canonical)) == ["work", "home"]


def test_when_no_canonical_value_is_free_the_type_is_left_out() -> None:
    assert types_of(typed_emails(emails("work", "work"), ["work"])) == ["work", None]


def test_email_types_are_fitted_for_a_target_that_publishes_no_schemas() -> None:
    user = fit_user(connector_user(), DeclaredSchema.unknown(), formatted_name=None)
    assert types_of(user.payload["emails"]) == ["work", "other"]
    assert user.adjustments == (Adjustment("emails.type", Reason.RETYPED),)


def test_email_types_the_target_does_not_take_are_dropped_not_retyped() -> None:
    answer = listed(core(attribute("emails", attribute("value"), multi=True)))
    user = fit_user(connector_user(), declared_schema(answer), formatted_name=None)
    assert Adjustment("emails.type", Reason.RETYPED) not in user.adjustments
    assert Adjustment("emails.type", Reason.UNDECLARED) in user.adjustments


def test_email_types_follow_the_canonical_values_the_target_publishes() -> None:
    emails_declared = attribute(
        "emails", attribute("value"), attribute("type", canonical=["work", "private"]), multi=True
    )
    payload = fitted(listed(core(emails_declared)))
    assert payload["emails"] == [
        {"value": "ann@org0.be", "type": "work"},
        {"value": "ann@org1.be", "type": "private"},
    ]


@given(
    types=st.lists(st.sampled_from(["work", "home", "other", "WORK", None]), max_size=6),
    primary=st.none() | st.integers(0, 5),
    canonical=st.none() | st.lists(st.sampled_from(["work", "home", "other", "x"]), unique=True),
)
def test_no_two_emails_share_a_type_and_nothing_else_changes(
    types: list[str | None], primary: int | None, canonical: list[str] | None
) -> None:
    entries = emails(*types, primary=primary)
    typed = typed_emails(entries, canonical)
    held = [t.casefold() for t in types_of(typed) if t is not None]
    assert len(held) == len(set(held))
    assert [{k: v for k, v in e.items() if k != "type"} for e in typed] == [
        {k: v for k, v in e.items() if k != "type"} for e in entries
    ]
    assert typed_emails(typed, canonical) == typed


# --- PATCH paths -----------------------------------------------------------------------------


def test_a_patch_path_the_target_does_not_declare_is_dropped() -> None:
    declared = declared_schema(listed(core(*CONNECTOR_CORE)))
    assert fit_patch_paths(["displayName", "title", "name.middleName"], declared) == (
        ("displayName",),
        ("title", "name.middleName"),
    )


def test_a_read_only_patch_path_is_dropped() -> None:
    declared = declared_schema(
        listed(core(attribute("externalId", mutability="readOnly"), *CONNECTOR_CORE))
    )
    assert fit_patch_paths(["externalId", "active"], declared) == (("active",), ("externalId",))


def test_a_filtered_patch_path_is_judged_by_its_attribute() -> None:
    declared = declared_schema(listed(core(attribute("emails", attribute("value"), multi=True))))
    kept, dropped = fit_patch_paths(
        ['emails[type eq "work"].value', 'emails[type eq "a]b"].type', "emails"], declared
    )
    assert kept == ('emails[type eq "work"].value', "emails")
    assert dropped == ('emails[type eq "a]b"].type',)


def test_an_extension_patch_path_is_judged_in_its_extension_s_schema() -> None:
    declared = declared_schema(
        listed(core(*CONNECTOR_CORE), schema(ENTERPRISE.lower(), attribute("employeeNumber")))
    )
    paths = [f"{ENTERPRISE}:EMPLOYEENUMBER", f"{ENTERPRISE}:organization", ENTERPRISE]
    assert fit_patch_paths(paths, declared) == ((paths[0], paths[2]), (paths[1],))


def test_a_core_path_with_its_urn_is_judged_in_the_core_schema() -> None:
    declared = declared_schema(listed(core(*CONNECTOR_CORE)))
    assert fit_patch_paths([f"{CORE}:name.givenName", f"{CORE}:title"], declared) == (
        (f"{CORE}:name.givenName",),
        (f"{CORE}:title",),
    )


def test_every_patch_path_is_kept_when_nothing_is_published() -> None:
    paths = ["title", f"{ACMIDM}:rights", 'emails[type eq "work"].value']
    assert fit_patch_paths(paths, DeclaredSchema.unknown()) == (tuple(paths), ())


# --- properties ------------------------------------------------------------------------------

STANDARD = [
    User.to_schema().model_dump(mode="json"),
    EnterpriseUser.to_schema().model_dump(mode="json"),
]


@st.composite
def some_of(draw: st.DrawFn, declarations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A random subset of declarations, in random case, with random mutability and requiredness;
    a complex one keeps at least one sub-attribute."""
    chosen = []
    for declaration in declarations:
        if not draw(st.booleans()):
            continue
        declaration = {
            **declaration,
            "name": draw(st.sampled_from([str.lower, str.upper, str]))(declaration["name"]),
            "mutability": draw(st.sampled_from([m.value for m in Mutability])),
            "required": draw(st.booleans()),
        }
        if declaration.get("subAttributes"):
            subs = draw(some_of(declaration["subAttributes"]))
            declaration["subAttributes"] = subs or declaration["subAttributes"][:1]
        chosen.append(declaration)
    return chosen


@st.composite
def published(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A /Schemas answer made of random parts of the standard User and enterprise schemas."""
    return [
        {**standard, "attributes": draw(some_of(standard["attributes"]))}
        for standard in STANDARD
        if draw(st.booleans())
    ]


def assert_declared_and_writable(value: dict[str, Any], declarations: list[dict[str, Any]]) -> None:
    """Every member of `value` (and of its complex values) is declared and not readOnly."""
    for name, member in value.items():
        found = [d for d in declarations if d["name"].casefold() == name.casefold()]
        assert found, name
        assert found[0]["mutability"] != "readOnly", name
        subs = found[0].get("subAttributes")
        for item in (member if isinstance(member, list) else [member]) if subs else []:
            assert_declared_and_writable(item, subs)


users = st.builds(
    lambda n, given_name, family_name: {
        **connector_user(n),
        "name": {"givenName": given_name, "familyName": family_name},
    },
    st.integers(0, 3),
    st.text(min_size=1, max_size=5),
    st.text(min_size=1, max_size=5),
)


@settings(max_examples=200)
@given(answer=published(), user=users)
def test_what_is_sent_is_declared_and_writable_and_fitting_twice_changes_nothing(
    answer: list[dict[str, Any]], user: dict[str, Any]
) -> None:
    declared = declared_schema(listed(*answer))
    payload = fit_user(user, declared, formatted_name="Ann Peeters").payload
    # A schema declaring no attribute is taken as unpublished.
    by_urn = {schema["id"]: schema["attributes"] for schema in answer if schema["attributes"]}
    if CORE in by_urn:
        common = {
            "schemas",
            *({"externalId"} if declared.attribute(CORE, "externalId") is None else ()),
        }
        core_part = {
            k: v for k, v in payload.items() if not k.startswith("urn:") and k not in common
        }
        assert_declared_and_writable(core_part, by_urn[CORE])
    if ENTERPRISE in by_urn:
        assert_declared_and_writable(payload[ENTERPRISE], by_urn[ENTERPRISE])
    again = fit_user(payload, declared, formatted_name="Ann Peeters").payload
    assert again == payload


@given(user=users)
def test_when_nothing_is_published_only_email_types_change(user: dict[str, Any]) -> None:
    payload = fit_user(user, DeclaredSchema.unknown(), formatted_name="Ann Peeters").payload
    assert payload == {**user, "emails": typed_emails(user["emails"])}
