rule{ name = "r", eligible = function(c, o) return true end }
while true do end
