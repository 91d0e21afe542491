# Responses API and Azure integration tests (label integration): the openai client against
# moongate with the OpenAI mock (native /v1/responses), the Anthropic mock (translated), and
# the Azure mock (tests/mocks/azure_mock.mjs).  mg_node_test is defined in tests/CMakeLists.txt.
mg_node_test(integration.responses_native integration/responses_native.test.mjs integration TIMEOUT 120)
mg_node_test(integration.responses_translated integration/responses_translated.test.mjs integration TIMEOUT 120)
mg_node_test(integration.azure integration/azure.test.mjs integration TIMEOUT 180)
