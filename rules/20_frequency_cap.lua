-- Frequency cap: the same offer at most 3 times a week per customer, and
-- never again the day after it was dismissed.
local MAX_PER_WEEK = 3

rule {
  name = "frequency_cap",
  description = "at most 3 impressions of one offer per 7 days; none for 1 day after a dismiss",
  eligible = function(offer, customer, ctx)
    if offer.kind ~= "offer" then return nil end
    local shown = history.count("impression", offer.id, "7d")
    if shown >= MAX_PER_WEEK then
      return false, "shown " .. shown .. " times in 7 days (cap " .. MAX_PER_WEEK .. ")"
    end
    if history.count("dismiss", offer.id, "1d") > 0 then
      return false, "dismissed in the last day"
    end
  end,
}
