# Bedrock integration tests (label integration): the mock of the Bedrock Runtime API
# (tests/mocks/bedrock_mock.mjs, which verifies SigV4 signatures) against moongate with the
# official openai and @anthropic-ai/sdk clients, and the AWS key rotation test.
# mg_node_test is defined in tests/CMakeLists.txt, which includes this file.
mg_node_test(integration.mock_bedrock integration/mock_bedrock.test.mjs integration TIMEOUT 120)
mg_node_test(integration.bedrock_provider integration/bedrock_provider.test.mjs integration TIMEOUT 240)
mg_node_test(integration.rotation_bedrock integration/rotation_bedrock.test.mjs integration TIMEOUT 240)
