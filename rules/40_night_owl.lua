-- Night owls get a timing boost late in the evening: they read and buy then.
-- Uses the DNA bucket when the DNA plugin provides one (customer.dna.night_owl).
local function is_night(hour) return hour >= 22 or hour < 3 end

rule {
  name = "night_owl_boost",
  description = "x1.3 for night owls between 22:00 and 03:00",
  score = function(offer, p, customer, ctx)
    local dna = customer.dna
    if dna and dna.night_owl == "high" and is_night(ctx.hour) then
      return 1.3, "night owl at " .. ctx.hour .. ":00"
    end
  end,
}
