# ruff: noqa: E501 - the SDL keeps one type per line, as Shopify writes it
"""The part of Shopify's Admin GraphQL schema (2026-01 names) that the sandbox serves.

The adapter's operations (``adapters/shopify/queries/*.graphql``) are parsed,
validated and executed against this SDL with graphql-core, so an operation
that asks for a field Shopify would reject fails here too. Types and field
names follow Shopify's; only the fields aftercare reads (and a few neighbours
a plugin author may try) are present.

Query cost follows Shopify's published rules: scalars and enums 0, an object
1, a connection 2 plus ``first`` times the cost of one node, a list with
``first`` that many times one item, a mutation 10. :func:`requested_cost`
computes it from the document (before running, to charge the bucket);
:class:`CostMeter` counts the objects really returned (the refundable
``actualQueryCost``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    build_schema,
    get_named_type,
    get_nullable_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
)

SDL = """
scalar DateTime
scalar Decimal
scalar URL
scalar UnsignedInt64

interface Node { id: ID! }

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }

type MoneyV2 { amount: Decimal! currencyCode: CurrencyCode! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }

enum CurrencyCode { EUR USD GBP BGN CAD AUD CHF SEK DKK NOK PLN CZK RON HUF JPY }

type Query {
  orders(first: Int, after: String, last: Int, before: String, query: String,
         sortKey: OrderSortKeys = PROCESSED_AT, reverse: Boolean = false): OrderConnection!
  order(id: ID!): Order
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  customers(first: Int, after: String, last: Int, before: String, query: String,
            sortKey: CustomerSortKeys = ID, reverse: Boolean = false): CustomerConnection!
  customer(id: ID!): Customer
  product(id: ID!): Product
  codeDiscountNodeByCode(code: String!): DiscountCodeNode
  webhookSubscriptions(first: Int, after: String, last: Int, before: String,
                       topics: [WebhookSubscriptionTopic!]): WebhookSubscriptionConnection!
  shop: Shop!
  currentAppInstallation: AppInstallation!
}

type Mutation {
  discountCodeBasicCreate(basicCodeDiscount: DiscountCodeBasicInput!): DiscountCodeBasicCreatePayload
  customerEmailMarketingConsentUpdate(input: CustomerEmailMarketingConsentUpdateInput!): CustomerEmailMarketingConsentUpdatePayload
  tagsAdd(id: ID!, tags: [String!]!): TagsAddPayload
  orderUpdate(input: OrderInput!): OrderUpdatePayload
  webhookSubscriptionCreate(topic: WebhookSubscriptionTopic!, webhookSubscription: WebhookSubscriptionInput!): WebhookSubscriptionCreatePayload
  webhookSubscriptionDelete(id: ID!): WebhookSubscriptionDeletePayload
}

enum OrderSortKeys { CREATED_AT CUSTOMER_NAME ID NUMBER ORDER_NUMBER PROCESSED_AT TOTAL_PRICE UPDATED_AT RELEVANCE }
enum CustomerSortKeys { CREATED_AT ID NAME UPDATED_AT RELEVANCE }

enum OrderDisplayFinancialStatus { AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED }
enum OrderDisplayFulfillmentStatus { FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT REQUEST_DECLINED RESTOCKED SCHEDULED UNFULFILLED }
enum FulfillmentStatus { CANCELLED ERROR FAILURE SUCCESS OPEN PENDING }
enum FulfillmentDisplayStatus { ATTEMPTED_DELIVERY CANCELED CONFIRMED DELAYED DELIVERED FAILURE FULFILLED CARRIER_PICKED_UP IN_TRANSIT LABEL_PRINTED LABEL_PURCHASED LABEL_VOIDED MARKED_AS_FULFILLED NOT_DELIVERED OUT_FOR_DELIVERY PICKED_UP READY_FOR_PICKUP SUBMITTED }
enum ReturnStatus { CANCELED CLOSED DECLINED OPEN REQUESTED }
enum ReturnReason { COLOR DEFECTIVE NOT_AS_DESCRIBED OTHER SIZE_TOO_LARGE SIZE_TOO_SMALL STYLE UNKNOWN UNWANTED WRONG_ITEM }
enum CustomerEmailMarketingState { INVALID NOT_SUBSCRIBED PENDING REDACTED SUBSCRIBED UNSUBSCRIBED }
enum CustomerMarketingOptInLevel { CONFIRMED_OPT_IN SINGLE_OPT_IN UNKNOWN }

type Order implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  email: String
  note: String
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  cancelledAt: DateTime
  cancelReason: String
  closedAt: DateTime
  test: Boolean!
  tags: [String!]!
  discountCodes: [String!]!
  customerLocale: String
  currencyCode: CurrencyCode!
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  totalPriceSet: MoneyBag!
  subtotalPriceSet: MoneyBag
  totalRefundedSet: MoneyBag!
  customer: Customer
  shippingAddress: MailingAddress
  billingAddress: MailingAddress
  lineItems(first: Int, after: String): LineItemConnection!
  fulfillments(first: Int): [Fulfillment!]!
  refunds(first: Int): [Refund!]!
  returns(first: Int, after: String): ReturnConnection!
}
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }

type MailingAddress {
  firstName: String lastName: String name: String company: String address1: String address2: String
  city: String province: String zip: String country: String countryCodeV2: String phone: String
}

type Customer implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  firstName: String
  lastName: String
  displayName: String!
  locale: String!
  phone: String
  tags: [String!]!
  createdAt: DateTime!
  updatedAt: DateTime!
  defaultEmailAddress: CustomerEmailAddress
  email: String @deprecated(reason: "Use `defaultEmailAddress.emailAddress` instead.")
  emailMarketingConsent: CustomerEmailMarketingConsentState @deprecated(reason: "Use `defaultEmailAddress.marketingState`, `defaultEmailAddress.marketingOptInLevel`, `defaultEmailAddress.marketingUpdatedAt`, and `defaultEmailAddress.sourceLocation` instead.")
  metafield(namespace: String, key: String!): Metafield
}
type Metafield implements Node {
  id: ID! namespace: String! key: String! type: String! value: String! createdAt: DateTime! updatedAt: DateTime!
  references(first: Int, after: String, last: Int, before: String): MetafieldReferenceConnection
}
enum CustomerEmailAddressMarketingState { INVALID NOT_SUBSCRIBED PENDING SUBSCRIBED UNSUBSCRIBED UNKNOWN }
type CustomerEmailAddress {
  emailAddress: String!
  marketingState: CustomerEmailAddressMarketingState!
  marketingOptInLevel: CustomerMarketingOptInLevel
  marketingUpdatedAt: DateTime
}
type CustomerEmailMarketingConsentState {
  marketingState: CustomerEmailMarketingState!
  marketingOptInLevel: CustomerMarketingOptInLevel
  consentUpdatedAt: DateTime
}
type CustomerEdge { cursor: String! node: Customer! }
type CustomerConnection { edges: [CustomerEdge!]! nodes: [Customer!]! pageInfo: PageInfo! }

type Product implements Node {
  id: ID! title: String! handle: String! status: ProductStatus! onlineStoreUrl: URL featuredMedia: Media
  priceRangeV2: ProductPriceRangeV2!
  metafield(namespace: String, key: String!): Metafield
}
enum ProductStatus { ACTIVE ARCHIVED DRAFT UNLISTED }
type ProductPriceRangeV2 { minVariantPrice: MoneyV2! maxVariantPrice: MoneyV2! }
interface Media { id: ID! alt: String preview: MediaPreviewImage }
type MediaImage implements Media & Node { id: ID! alt: String preview: MediaPreviewImage }
type MediaPreviewImage { image: Image }
type Image { url(transform: ImageTransformInput): URL! altText: String }
input ImageTransformInput { maxWidth: Int maxHeight: Int }
union MetafieldReference = Product
type MetafieldReferenceEdge { cursor: String! node: MetafieldReference }
type MetafieldReferenceConnection { edges: [MetafieldReferenceEdge!]! nodes: [MetafieldReference]! pageInfo: PageInfo! }
type ProductVariant implements Node { id: ID! title: String! sku: String }

type LineItem implements Node {
  id: ID!
  title: String!
  name: String!
  variantTitle: String
  quantity: Int!
  sku: String
  originalUnitPriceSet: MoneyBag!
  product: Product
  variant: ProductVariant
}
type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection { edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }

type FulfillmentTrackingInfo { company: String number: String url: URL }
type FulfillmentLineItem implements Node { id: ID! quantity: Int lineItem: LineItem! }
type FulfillmentLineItemEdge { cursor: String! node: FulfillmentLineItem! }
type FulfillmentLineItemConnection { edges: [FulfillmentLineItemEdge!]! nodes: [FulfillmentLineItem!]! pageInfo: PageInfo! }

type Fulfillment implements Node {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  displayStatus: FulfillmentDisplayStatus
  createdAt: DateTime!
  updatedAt: DateTime!
  deliveredAt: DateTime
  inTransitAt: DateTime
  estimatedDeliveryAt: DateTime
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(first: Int, after: String): FulfillmentLineItemConnection!
}

type Refund implements Node {
  id: ID!
  createdAt: DateTime
  note: String
  totalRefundedSet: MoneyBag!
}

interface ReturnLineItemType {
  id: ID! quantity: Int! customerNote: String
  returnReason: ReturnReason! @deprecated(reason: "Use `returnReasonDefinition` instead. This field will be removed in the future.")
  returnReasonDefinition: ReturnReasonDefinition
}
type ReturnReasonDefinition implements Node { id: ID! deleted: Boolean! handle: String! name: String! }
type ReturnLineItem implements Node & ReturnLineItemType {
  id: ID! quantity: Int! customerNote: String
  returnReason: ReturnReason! @deprecated(reason: "Use `returnReasonDefinition` instead. This field will be removed in the future.")
  returnReasonDefinition: ReturnReasonDefinition
  fulfillmentLineItem: FulfillmentLineItem!
}
type ReturnLineItemTypeEdge { cursor: String! node: ReturnLineItemType! }
type ReturnLineItemTypeConnection { edges: [ReturnLineItemTypeEdge!]! nodes: [ReturnLineItemType!]! pageInfo: PageInfo! }
type Return implements Node {
  id: ID!
  name: String!
  status: ReturnStatus!
  returnLineItems(first: Int, after: String): ReturnLineItemTypeConnection!
}
type ReturnEdge { cursor: String! node: Return! }
type ReturnConnection { edges: [ReturnEdge!]! nodes: [Return!]! pageInfo: PageInfo! }

type Shop implements Node { id: ID! name: String! myshopifyDomain: String! email: String currencyCode: CurrencyCode! ianaTimezone: String! }
type AccessScope { handle: String! description: String! }
type AppInstallation implements Node { id: ID! accessScopes: [AccessScope!]! }

type UserError { field: [String!] message: String! }

enum DiscountErrorCode { BLANK INVALID TAKEN TOO_LONG TOO_SHORT GREATER_THAN GREATER_THAN_OR_EQUAL_TO LESS_THAN LESS_THAN_OR_EQUAL_TO PRESENT CONFLICT INTERNAL_ERROR }
type DiscountUserError { field: [String!] message: String! code: DiscountErrorCode extraInfo: String }
type DiscountRedeemCode { id: ID! code: String! asyncUsageCount: Int! }
type DiscountRedeemCodeEdge { cursor: String! node: DiscountRedeemCode! }
type DiscountRedeemCodeConnection { edges: [DiscountRedeemCodeEdge!]! nodes: [DiscountRedeemCode!]! pageInfo: PageInfo! }
type DiscountCodeBasic {
  title: String!
  startsAt: DateTime!
  endsAt: DateTime
  usageLimit: Int
  appliesOncePerCustomer: Boolean!
  asyncUsageCount: Int!
  codes(first: Int, after: String): DiscountRedeemCodeConnection!
}
union DiscountCode = DiscountCodeBasic
type DiscountCodeNode implements Node { id: ID! codeDiscount: DiscountCode! }
type DiscountCodeBasicCreatePayload { codeDiscountNode: DiscountCodeNode userErrors: [DiscountUserError!]! }

enum DiscountBuyerSelection { ALL }
input DiscountCustomersInput { add: [ID!] remove: [ID!] }
input DiscountCustomerSegmentsInput { add: [ID!] remove: [ID!] }
input DiscountContextInput { all: DiscountBuyerSelection customers: DiscountCustomersInput customerSegments: DiscountCustomerSegmentsInput }
input DiscountAmountInput { amount: Decimal appliesOnEachItem: Boolean }
input DiscountCustomerGetsValueInput { percentage: Float discountAmount: DiscountAmountInput }
input DiscountItemsInput { all: Boolean }
input DiscountCustomerGetsInput { value: DiscountCustomerGetsValueInput items: DiscountItemsInput appliesOnOneTimePurchase: Boolean appliesOnSubscription: Boolean }
input DiscountMinimumSubtotalInput { greaterThanOrEqualToSubtotal: Decimal }
input DiscountMinimumQuantityInput { greaterThanOrEqualToQuantity: UnsignedInt64 }
input DiscountMinimumRequirementInput { subtotal: DiscountMinimumSubtotalInput quantity: DiscountMinimumQuantityInput }
input DiscountCombinesWithInput { orderDiscounts: Boolean productDiscounts: Boolean shippingDiscounts: Boolean }
input DiscountCodeBasicInput {
  title: String
  code: String
  startsAt: DateTime
  endsAt: DateTime
  usageLimit: Int
  appliesOncePerCustomer: Boolean
  context: DiscountContextInput
  customerGets: DiscountCustomerGetsInput
  minimumRequirement: DiscountMinimumRequirementInput
  combinesWith: DiscountCombinesWithInput
  recurringCycleLimit: Int
}

input CustomerEmailMarketingConsentInput {
  marketingState: CustomerEmailMarketingState!
  marketingOptInLevel: CustomerMarketingOptInLevel
  consentUpdatedAt: DateTime
}
input CustomerEmailMarketingConsentUpdateInput { customerId: ID! emailMarketingConsent: CustomerEmailMarketingConsentInput! }
enum CustomerEmailMarketingConsentUpdateUserErrorCode { INCLUSION INTERNAL_ERROR INVALID MISSING_ARGUMENT }
type CustomerEmailMarketingConsentUpdateUserError { field: [String!] message: String! code: CustomerEmailMarketingConsentUpdateUserErrorCode }
type CustomerEmailMarketingConsentUpdatePayload { customer: Customer userErrors: [CustomerEmailMarketingConsentUpdateUserError!]! }

type TagsAddPayload { node: Node userErrors: [UserError!]! }

input OrderInput { id: ID! email: String note: String tags: [String!] }
type OrderUpdatePayload { order: Order userErrors: [UserError!]! }

enum WebhookSubscriptionFormat { JSON XML }
enum WebhookSubscriptionTopic {
  ORDERS_CREATE ORDERS_PAID ORDERS_FULFILLED ORDERS_PARTIALLY_FULFILLED ORDERS_UPDATED ORDERS_CANCELLED
  ORDERS_DELETE ORDERS_EDITED FULFILLMENTS_CREATE FULFILLMENTS_UPDATE FULFILLMENT_EVENTS_CREATE
  FULFILLMENT_EVENTS_DELETE REFUNDS_CREATE RETURNS_REQUEST RETURNS_APPROVE RETURNS_UPDATE RETURNS_CLOSE
  RETURNS_DECLINE RETURNS_CANCEL RETURNS_REOPEN CUSTOMERS_CREATE CUSTOMERS_UPDATE
  CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE APP_UNINSTALLED
}
input WebhookSubscriptionInput {
  uri: String
  callbackUrl: URL
  format: WebhookSubscriptionFormat
  includeFields: [String!]
  filter: String
  metafieldNamespaces: [String!]
}
type WebhookSubscription implements Node {
  id: ID!
  topic: WebhookSubscriptionTopic!
  uri: String!
  callbackUrl: URL!
  format: WebhookSubscriptionFormat!
  includeFields: [String!]!
  filter: String
  createdAt: DateTime!
  updatedAt: DateTime!
}
type WebhookSubscriptionEdge { cursor: String! node: WebhookSubscription! }
type WebhookSubscriptionConnection { edges: [WebhookSubscriptionEdge!]! nodes: [WebhookSubscription!]! pageInfo: PageInfo! }
type WebhookSubscriptionCreatePayload { webhookSubscription: WebhookSubscription userErrors: [UserError!]! }
type WebhookSubscriptionDeletePayload { deletedWebhookSubscriptionId: ID userErrors: [UserError!]! }
"""

#: Shopify charges every mutation this much, whatever it selects.
MUTATION_COST = 10


@cache
def schema() -> GraphQLSchema:
    return build_schema(SDL)


def datetime_text(moment: datetime | None) -> str | None:
    """GraphQL DateTime as Shopify writes it: UTC with a ``Z``."""
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


# -- query cost ----------------------------------------------------------------


def requested_cost(document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> int:
    if operation.operation is OperationType.MUTATION:
        return MUTATION_COST
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walker = _CostWalker(schema(), fragments, variables)
    return walker.selection(schema().query_type, operation.selection_set)


class _CostWalker:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode], variables) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def selection(self, type_: Any, selection_set: SelectionSetNode | None) -> int:
        """Cost of one value of ``type_``'s sub-selection (the most expensive member
        for an interface or union, as Shopify prices abstract types)."""
        if selection_set is None:
            return 0
        if is_abstract_type(type_):
            members = self.schema.get_possible_types(type_)
            return max((self.fields(member, selection_set) for member in members), default=0)
        return self.fields(type_, selection_set)

    def fields(self, obj: GraphQLObjectType, selection_set: SelectionSetNode) -> int:
        total = 0
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                field = obj.fields.get(node.name.value)
                if field is not None:
                    total += self.field(field.type, node)
            elif isinstance(node, InlineFragmentNode):
                if self._applies(node.type_condition.name.value if node.type_condition else None, obj):
                    total += self.fields(obj, node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None and self._applies(fragment.type_condition.name.value, obj):
                    total += self.fields(obj, fragment.selection_set)
        return total

    def field(self, type_: Any, node: FieldNode) -> int:
        named = get_named_type(type_)
        if is_leaf_type(named) or named.name == "PageInfo":
            return 0
        nullable = get_nullable_type(type_)
        if is_list_type(nullable):
            size = self._size(node, default=1)
            return size * (1 + self.selection(named, node.selection_set))
        if named.name.endswith("Connection"):
            size = self._size(node, default=0)
            inner = 0
            for child in node.selection_set.selections if node.selection_set else ():
                if isinstance(child, FieldNode) and child.name.value in ("nodes", "edges"):
                    item = get_named_type(named.fields[child.name.value].type)
                    inner += size * (1 + self.selection(item, child.selection_set))
            return 2 + inner
        return 1 + self.selection(named, node.selection_set)

    def _size(self, node: FieldNode, default: int) -> int:
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last", "ids"):
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                raw = self.variables.get(value.name.value)
                return len(raw) if isinstance(raw, list) else int(raw or 0)
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, ListValueNode):
                return len(value.values)
        return default

    def _applies(self, condition: str | None, obj: GraphQLObjectType) -> bool:
        if condition is None or condition == obj.name:
            return True
        target = self.schema.get_type(condition)
        return target is not None and is_abstract_type(target) and self.schema.is_sub_type(target, obj)


class CostMeter:
    """graphql-core middleware counting the objects an execution really returned."""

    def __init__(self) -> None:
        self.cost = 0

    def resolve(self, next_, root, info, **args):
        result = next_(root, info, **args)
        named = get_named_type(info.return_type)
        if result is None or is_leaf_type(named) or named.name == "PageInfo":
            return result
        if isinstance(result, list):
            self.cost += sum(1 for item in result if item is not None)
        elif named.name.endswith("Connection"):
            self.cost += 2
        else:
            self.cost += 1
        return result
