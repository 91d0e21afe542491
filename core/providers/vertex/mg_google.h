/*
 * mg_google.h -- what the two Google providers share: gemini/ (the Gemini API, Google AI
 * Studio, mg_provider_gemini.c) and vertex_ai/ (Vertex AI, mg_provider_vertex.c).
 *
 * LiteLLM maps both providers' errors in one function (_map_vertex_exception), naming the
 * exception after the provider: "vertex_ai" gives "Vertex_aiException" (Python's
 * str.capitalize()) in most messages and "vertex_aiException" in a few, "gemini" gives
 * "GeminiException" / "geminiException".  The message carries the upstream's body as it
 * came, as LiteLLM's error_str does (scrubbed by the caller, mg_provider_error_http).
 */
#ifndef MG_GOOGLE_H
#define MG_GOOGLE_H

#include "../mg_provider.h"

/* The upstream error (status, body) of a Google provider in LiteLLM's terms; provider is
 * LiteLLM's custom_llm_provider ("vertex_ai" or "gemini"). */
void mg_google_map_error(const char *provider, int status, const char *body, size_t len,
                         mg_uperr_t *out);

#endif
