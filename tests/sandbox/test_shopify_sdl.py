"""The sandbox's GraphQL schema is a part of Shopify's 2026-01 schema: every type, field, argument,
enum value and union member it serves exists there, with the same type, so an operation the sandbox
accepts is one Shopify accepts too (tests/adapters/shopify/test_queries.py checks ours against Shopify's)."""

import gzip

from graphql import GraphQLEnumType, GraphQLInterfaceType, GraphQLObjectType, GraphQLUnionType, build_schema

from aftercare.sandbox.shopify_schema import schema

#: Differences the sandbox had before this check, each looser than Shopify (it accepts more).
KNOWN = {
    "enum OrderSortKeys: NUMBER",
    "Order.cancelReason: String, Shopify: OrderCancelReason",
    "MailingAddress.countryCodeV2: String, Shopify: CountryCode",
    "enum CustomerEmailAddressMarketingState: UNKNOWN",
    "Shop.email: String, Shopify: String!",
}


def differences(ours, official) -> set[str]:
    found = set()
    for name, kind in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = {"Query": official.query_type, "Mutation": official.mutation_type}.get(name) or official.get_type(name)
        if theirs is None:
            found.add(f"type {name}: not in Shopify's schema")
            continue
        if isinstance(kind, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in kind.fields.items():
                other = theirs.fields.get(field_name)
                if other is None:
                    found.add(f"{name}.{field_name}: not in Shopify's schema")
                    continue
                if str(field.type) != str(other.type):
                    found.add(f"{name}.{field_name}: {field.type}, Shopify: {other.type}")
                for arg, value in field.args.items():
                    if arg not in other.args or str(value.type) != str(other.args[arg].type):
                        found.add(f"{name}.{field_name}({arg}: {value.type}): not as in Shopify's schema")
        if isinstance(kind, GraphQLEnumType):
            found.update(f"enum {name}: {value}" for value in set(kind.values) - set(theirs.values))
        if isinstance(kind, GraphQLUnionType):
            members = {member.name for member in theirs.types}
            found.update(f"union {name}: {m.name}" for m in kind.types if m.name not in members)
    return found


def test_the_sandbox_serves_only_what_shopify_2026_01_has(shared_fixtures):
    path = shared_fixtures / "shopify" / "schema" / "admin_schema_2026-01.graphql.gz"
    official = build_schema(gzip.decompress(path.read_bytes()).decode("utf-8"), assume_valid=True)
    assert differences(schema(), official) == KNOWN


def test_the_check_sees_a_field_shopify_lacks(shared_fixtures):
    ours = build_schema("type Query { shop: Shop } type Shop { name: String! colour: String }")
    official = build_schema("type QueryRoot { shop: Shop! } type Shop { name: String! } schema { query: QueryRoot }")
    assert differences(ours, official) == {"Shop.colour: not in Shopify's schema", "Query.shop: Shop, Shopify: Shop!"}
