-- Discounts go to the customers they move: deal seekers get offers with a
-- discount boosted; customers who buy at full price do not get deep discounts
-- (no margin given away for nothing).
rule {
  name = "deal_seeker_discounts",
  description = "boost discounted offers for deal seekers; no deep discounts for full-price buyers",
  eligible = function(offer, customer, ctx)
    local dna = customer.dna
    if offer.discount_max and offer.discount_max >= 0.25 and dna and dna.deal_seeker == "low" then
      return false, "deep discount not needed: buys at full price"
    end
  end,
  score = function(offer, p, customer, ctx)
    local dna = customer.dna
    if offer.discount_max and dna and dna.deal_seeker == "high" then
      return 1.25, string.format("deal seeker; discount up to %d%%", math.floor(offer.discount_max * 100 + 0.5))
    end
  end,
}
