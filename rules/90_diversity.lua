-- Variety on the home page: at most one offer per category among the top
-- results (email and checkout slots show one offer; recs are items).
rule {
  name = "one_per_category",
  description = "home page: keep the best offer of each category; drop the rest",
  finalize = function(offers, customer, ctx)
    if ctx.placement ~= "home" then return nil end
    local seen, kept = {}, {}
    for _, o in ipairs(offers) do
      local key = o.category or o.id
      if not seen[key] then
        seen[key] = true
        kept[#kept + 1] = o
      end
    end
    return kept
  end,
}
