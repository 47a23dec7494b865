from aftercare.testing import dispatch, make_event, sample_order

import thank_you


def test_coupon_then_mail_with_its_code(aftercare_app):
    app = aftercare_app(thank_you, settings={"thank_you": {"percent": 15}})
    order = sample_order("shopify_order_paid_fulfilled")
    coupon, mail = dispatch(app, make_event("order_paid", order))
    assert (coupon.kind, coupon.payload["value"]) == ("create_coupon", "15")
    assert mail.payload["context"] == {"code": coupon.payload["code"]}
    assert mail.payload["to"] == order.customer.email
