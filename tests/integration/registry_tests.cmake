# The versioned registry (issue 3): real moongate, mock providers, redis-server
# and PostgreSQL on loopback.  Included from tests/CMakeLists.txt.
mg_node_test(integration.registry_load     integration/registry_load.test.mjs     integration TIMEOUT 120)
mg_node_test(integration.registry_replicas integration/registry_replicas.test.mjs integration TIMEOUT 180)
mg_node_test(integration.registry_pg       integration/registry_pg.test.mjs       integration TIMEOUT 120)
mg_node_test(integration.registry_journal  integration/registry_journal.test.mjs  integration TIMEOUT 120)
mg_node_test(integration.registry_reload   integration/registry_reload.test.mjs   integration TIMEOUT 120)
mg_node_test(integration.registry_pg_litellm integration/registry_pg_litellm.test.mjs integration TIMEOUT 120)
