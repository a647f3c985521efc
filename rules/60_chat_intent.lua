-- Route a chatbot intent to matching offers. ctx.intent comes from the
-- request's context (the application's own classifier) or, when the request
-- carries context.message, from the intent plugin (with ctx.intent_confidence;
-- names as in config/intents.yaml).
local BOOST = {
  upgrade_phone = { category = "phones", factor = 2.0 },
  find_phone = { category = "phones", factor = 1.5 },
  new_laptop = { category = "laptops", factor = 2.0 },
  gift_ideas = { category = "toys", factor = 1.8 },
  headphones = { category = "audio", factor = 2.0 },
  play_music = { category = "audio", factor = 1.5 },
  calories = { category = "wearables", factor = 1.5 },
  smart_home = { category = "home", factor = 1.5 },
}
local CANCEL = { cancel_contract = true, cancel = true }

rule {
  name = "chat_intent",
  description = "boost offers matching the customer's stated intent; no upsell to someone cancelling",
  eligible = function(offer, customer, ctx)
    local cancelling = CANCEL[ctx.intent] or ctx.intent_suppress_others == true
    if cancelling and offer.kind == "offer" and offer.value >= 50 then
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
