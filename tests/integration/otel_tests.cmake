# OpenTelemetry traces (issue 13): the gateway against tests/mocks/otel_collector.mjs and
# the mock provider (mg_node_test is defined in tests/CMakeLists.txt).
mg_node_test(integration.otel integration/otel.test.mjs integration TIMEOUT 240)
