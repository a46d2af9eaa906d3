-- wrk script: valid public-client registrations (RFC 7591), each with a
-- distinct name, as MCP clients send them.
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local body = string.format(
    '{"client_name":"bench client %d","redirect_uris":["http://127.0.0.1:%d/callback"],' ..
    '"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"],' ..
    '"response_types":["code"],"application_type":"native","scope":"mcp:read"}',
    counter, 20000 + (counter % 40000))
  return wrk.format(nil, "/register", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%d errors_status=%d p99_ms=%.2f\n",
    summary.requests, summary.errors.status, latency:percentile(99) / 1000))
end
