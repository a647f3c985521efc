-- Never offer what the customer has just bought: a purchased item (or an offer
-- promoting it) is suppressed for 30 days.
rule {
  name = "no_repeat_purchase",
  description = "suppress items the customer bought in the last 30 days",
  eligible = function(offer, customer, ctx)
    if offer.item and history.bought(offer.item, "30d") then
      return false, "bought " .. offer.item .. " in the last 30 days"
    end
  end,
}
