# Anthropic integration tests (label integration): the mock of Anthropic's Messages API
# (tests/mocks/anthropic_mock.mjs) checked against the official @anthropic-ai/sdk client.
# mg_node_test is defined in tests/CMakeLists.txt, which includes this file.
mg_node_test(integration.mock_anthropic integration/mock_anthropic.test.mjs integration TIMEOUT 120)
mg_node_test(integration.anthropic_provider integration/anthropic_provider.test.mjs integration TIMEOUT 120)
