-- wrk script: POST /api/v1/auth/login with the bench user's credentials.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"bench","password":"bench password 1234","device_name":"wrk"}'
