rule{ name = "x", score = 3 }
os.execute("true")
require("io")
