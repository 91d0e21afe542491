# Google providers (issue 14, label integration): gemini/ and vertex_ai/ against the mocks
# tests/mocks/{gemini,vertex,google_token}_mock.mjs, with the official openai and
# @anthropic-ai/sdk clients.  Included from tests/CMakeLists.txt.
#   mock_google        the mocks' own checks (JWT signatures, tokens, key header, bodies)
#   google_provider    chat, streams, tools, embeddings, errors, fallbacks, Claude on Vertex
#   google_tokens      the token step: one fetch per worker, disconnects, refusals, refresh
#   rotation_vertex    a rotated service-account key (inline, key file, /model/update)
mg_node_test(integration.mock_google     integration/mock_google.test.mjs     integration TIMEOUT 120)
mg_node_test(integration.google_provider integration/google_provider.test.mjs integration TIMEOUT 180)
mg_node_test(integration.google_tokens   integration/google_tokens.test.mjs   integration TIMEOUT 180)
mg_node_test(integration.rotation_vertex integration/rotation_vertex.test.mjs integration TIMEOUT 240)
