-- Sensitive offers (tags.sensitive, e.g. pregnancy) only for adults of 21 or
-- more who gave explicit consent: the lesson of the retailer that mailed baby
-- offers to a teenager before her family knew.
rule {
  name = "sensitive_gate",
  description = "sensitive offers need age >= 21 and explicit consent",
  eligible = function(offer, customer, ctx)
    local topic = offer.tags and offer.tags.sensitive
    if not topic then return nil end
    if not customer.personalised then
      return false, "sensitive (" .. topic .. "): customer unknown or not consenting"
    end
    local age = tonumber(customer.age)
    if not age or age < 21 then
      return false, "sensitive (" .. topic .. "): age unknown or under 21"
    end
    if customer.consent.sensitive ~= true then
      return false, "sensitive (" .. topic .. "): no explicit consent"
    end
  end,
}
