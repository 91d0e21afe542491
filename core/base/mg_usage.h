/*
 * mg_usage.h -- token usage of one LLM call, in one provider-neutral shape.
 *
 * Every provider's usage (OpenAI's usage object, Anthropic's input/output
 * tokens with cache counts, Gemini's usageMetadata, Bedrock's usage) is read
 * into this struct; spend, budgets, rate-limit settlement and metrics read
 * only this.  Counts follow OpenAI's convention: prompt_tokens includes the
 * cached tokens (read and created), completion_tokens includes reasoning.
 * Plain data, no ownership.
 */
#ifndef MG_USAGE_H
#define MG_USAGE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t prompt_tokens;          /* all input tokens, cache read and creation included */
    int64_t completion_tokens;      /* all output tokens, reasoning included */
    int64_t total_tokens;           /* as reported (0: prompt + completion) */
    int64_t cache_read_tokens;      /* part of prompt_tokens read from the provider's cache */
    int64_t cache_creation_tokens;  /* part of prompt_tokens written to the provider's cache */
    int64_t reasoning_tokens;       /* part of completion_tokens spent on reasoning */
    bool seen;                      /* the upstream reported usage at all */
} mg_usage_t;

static inline int64_t
mg_usage_total(const mg_usage_t *u)
{
    return u->total_tokens > 0 ? u->total_tokens : u->prompt_tokens + u->completion_tokens;
}

#endif
