# The spend-log pipeline (issue 12): real moongate, the mock provider and PostgreSQL (as the
# postgres user) on loopback.  Included from tests/CMakeLists.txt.
mg_node_test(integration.spend_embedded integration/spend_embedded.test.mjs integration TIMEOUT 180)
mg_node_test(integration.spend_pg       integration/spend_pg.test.mjs       integration TIMEOUT 300)
