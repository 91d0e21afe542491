# Policy integration tests (label integration): routing/fallback/wildcard policies, their
# updates under load, refusals, cooldowns shared by workers.  node:test files that start the
# real moongate binary with the mock provider on 127.0.0.1 (mg_node_test is defined in
# tests/CMakeLists.txt, which includes this file).
mg_node_test(integration.policy_swap integration/policy_swap.test.mjs integration TIMEOUT 240)
mg_node_test(integration.policy_refuse integration/policy_refuse.test.mjs integration TIMEOUT 120)
mg_node_test(integration.policy_wildcard integration/policy_wildcard.test.mjs integration TIMEOUT 180)
mg_node_test(integration.policy_fallbacks integration/policy_fallbacks.test.mjs integration TIMEOUT 120)
mg_node_test(integration.policy_cooldown integration/policy_cooldown.test.mjs integration TIMEOUT 120)
mg_node_test(integration.policy_strategies integration/policy_strategies.test.mjs integration TIMEOUT 120)
# waits for the wall-clock minute to change (up to 60 s)
mg_node_test(integration.policy_minute integration/policy_minute.test.mjs integration TIMEOUT 150)
mg_node_test(integration.policy_hostile integration/policy_hostile.test.mjs integration TIMEOUT 120)
