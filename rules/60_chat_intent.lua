-- Route a chatbot intent to matching offers. The intent comes from the request
-- context (ctx.intent, set by the application or the intent plugin).
local BOOST = {
  upgrade_phone = { category = "phones", factor = 2.0 },
  new_laptop = { category = "laptops", factor = 2.0 },
  gift_ideas = { category = "toys", factor = 1.8 },
  headphones = { category = "audio", factor = 2.0 },
}

rule {
  name = "chat_intent",
  description = "boost offers matching the customer's stated intent; no upsell to someone cancelling",
  eligible = function(offer, customer, ctx)
    if ctx.intent == "cancel_contract" and offer.kind == "offer" and offer.value >= 50 then
      return false, "customer wants to cancel: no upsell"
    end
  end,
  score = function(offer, p, customer, ctx)
    local route = ctx.intent and BOOST[ctx.intent]
    if route and offer.category == route.category then
      return route.factor, "matches chat intent " .. ctx.intent
    end
  end,
}
