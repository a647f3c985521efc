-- Sensitive offers (tags.sensitive, e.g. pregnancy): the lesson of the
-- retailer that mailed baby offers to a teenager before her family knew.
-- The engine's own gate (tailor.yaml `sensitive:`) already refuses them to
-- anyone under 21, without explicit consent or not personalised, before any
-- rule runs; no rule can loosen it. A rule can add conditions: this one keeps
-- them off a screen others may see (the app says `shared_device: true`).
rule {
  name = "sensitive_gate",
  description = "sensitive offers never on a shared device (age and consent: the engine's gate)",
  eligible = function(offer, customer, ctx)
    local topic = offer.tags and offer.tags.sensitive
    if not topic then return nil end
    if ctx.shared_device == true then
      return false, "sensitive (" .. topic .. "): shared device"
    end
  end,
}
