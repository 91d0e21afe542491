# End-to-end tests (label "e2e"): the official openai npm client (tests/node_modules,
# pinned in tests/package.json) against the built moongate, with the mock provider
# as the upstream.  Included from tests/CMakeLists.txt.
mg_node_test(e2e.chat          e2e/chat.test.mjs          e2e TIMEOUT 60)
mg_node_test(e2e.endpoints     e2e/endpoints.test.mjs     e2e TIMEOUT 60)
mg_node_test(e2e.errors        e2e/errors.test.mjs        e2e TIMEOUT 90)
mg_node_test(e2e.mock_response e2e/mock_response.test.mjs e2e TIMEOUT 60)
mg_node_test(e2e.concurrency   e2e/concurrency.test.mjs   e2e TIMEOUT 60)
mg_node_test(e2e.examples      e2e/examples.test.mjs      e2e TIMEOUT 150)
mg_node_test(e2e.readiness     e2e/readiness.test.mjs     e2e TIMEOUT 90)
mg_node_test(e2e.anthropic_sdk e2e/anthropic_sdk.test.mjs e2e TIMEOUT 60)
# the admin page in headless chromium (puppeteer-core), and /openapi.json against the routes
mg_node_test(e2e.admin_ui      e2e/admin_ui.test.mjs      e2e TIMEOUT 120)
mg_node_test(e2e.admin_ui_keys e2e/admin_ui_keys.test.mjs e2e TIMEOUT 120)
mg_node_test(e2e.openapi       e2e/openapi.test.mjs       e2e TIMEOUT 90)
