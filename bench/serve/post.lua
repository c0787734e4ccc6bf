-- wrk script of bench/serve/load.py: every request POSTs the body in the file named by the
-- environment variable BODY (one MNIST digit as a KServe v2 infer request).
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

