# Credential rotation and the upstream client pool (issue 5): real moongate,
# the mock provider on loopback.  Included from tests/CMakeLists.txt.
#   rotation_reload     100 x 30 s streams; key rotated by config reload and SIGHUP
#   rotation_model_api  100 x 30 s streams; key rotated by /model/update and PATCH
#   rotation_pool       idle timeout, forced eviction, pool limit, SIGTERM drain
#   rotation_state      /moongate/state pool fields, /cache/flushall|purge, api_base change
#   rotation_asan       mixed load under ASan/UBSan/LSan; skips unless the build is sanitized
mg_node_test(integration.rotation_reload    integration/rotation_reload.test.mjs    integration TIMEOUT 240)
mg_node_test(integration.rotation_model_api integration/rotation_model_api.test.mjs integration TIMEOUT 240)
mg_node_test(integration.rotation_pool      integration/rotation_pool.test.mjs      integration TIMEOUT 300)
mg_node_test(integration.rotation_state     integration/rotation_state.test.mjs     integration TIMEOUT 180)
mg_node_test(integration.rotation_asan      integration/rotation_asan.test.mjs      integration TIMEOUT 400)
