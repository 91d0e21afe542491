# Integration tests: node:test files that start the real moongate binary with
# the mock provider on 127.0.0.1 (mg_node_test is defined in tests/CMakeLists.txt).
mg_node_test(integration.http_protocol integration/http_protocol.test.mjs integration TIMEOUT 120)
mg_node_test(integration.forwarding integration/forwarding.test.mjs integration TIMEOUT 120)
mg_node_test(integration.routes_auth integration/routes_auth.test.mjs integration TIMEOUT 120)
mg_node_test(integration.streaming integration/streaming.test.mjs integration TIMEOUT 180)
mg_node_test(integration.upstream integration/upstream.test.mjs integration TIMEOUT 120)
mg_node_test(integration.errors_retries integration/errors_retries.test.mjs integration TIMEOUT 120)
mg_node_test(integration.process integration/process.test.mjs integration TIMEOUT 180)
mg_node_test(integration.cli_config integration/cli_config.test.mjs integration TIMEOUT 120)
mg_node_test(integration.hostile_accept integration/hostile_accept.test.mjs integration TIMEOUT 120)
mg_node_test(integration.hostile_http integration/hostile_http.test.mjs integration TIMEOUT 120)
mg_node_test(integration.hostile_heads integration/hostile_heads.test.mjs integration TIMEOUT 120)
mg_node_test(integration.hostile_fields integration/hostile_fields.test.mjs integration TIMEOUT 180)
