-- wrk script: POST the same small JSON event on every request.
wrk.method = "POST"
wrk.body = '{"order_id":"A-1001","amount":1234,"currency":"EUR","items":[{"sku":"lamp","qty":2}]}'
wrk.headers["Content-Type"] = "application/json"
