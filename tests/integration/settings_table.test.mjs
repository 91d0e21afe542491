// Issue 10, "Settings that are accepted and then ignored": the one settings table
// (core/registry/mg_settings.c, printed by `moongate settings`) against what the config
// loader does with each row.
//   - every "accepted, not implemented" row of a config section: `--validate_config` on a
//     config that sets it to a plausible value exits 0 and warns "accepted, not implemented in
//     moongate: <section>.<key>; effect: <the table's effect>" with the file:line;
//   - every "refused" row: `--validate_config` exits 1 naming it;
//   - a running gateway lists all the warned settings (with their effect) in /moongate/state
//     under settings_not_implemented;
//   - a setting moongate has never heard of is warned about, not silently taken;
//   - README.md holds the exact output of `moongate settings` between the lines
//     `<!-- settings:begin -->` and `<!-- settings:end -->`, so the README cannot drift.
// The request-body rows are behaviours, checked in limits_routing.test.mjs; this file checks
// only that the table has no request-body row that test does not know.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, moongateBin, repoRoot, tmpDir, pool } from '../lib/harness.mjs';
import { assertCleanStop } from './lib_rotation.mjs';

const out = spawnSync(moongateBin, ['settings'], { encoding: 'utf8', timeout: 20000 });
const SETTINGS_MD = out.stdout;

/** The table's rows: {section, key, status: 'implemented'|'warn'|'refused', effect}. */
function parseTable(md) {
  const rows = [];
  for (const line of md.split('\n')) {
    const m = /^\| ([^|]+) \| `([^`]+)` \| ([^|]+) \| (.*) \|$/.exec(line);
    if (!m) continue;
    const st = m[3].trim();
    const status = st === 'implemented' ? 'implemented' : st === 'refused' ? 'refused'
      : st === 'accepted, not implemented: warning' ? 'warn' : `unknown status "${st}"`;
    rows.push({ section: m[1].trim(), key: m[2], status, effect: m[4] });
  }
  return rows;
}
const ROWS = parseTable(SETTINGS_MD);
const CONFIG_SECTIONS = ['general_settings', 'litellm_settings', 'router_settings', 'top-level'];

// Plausible values, as a LiteLLM user's config would have them (LiteLLM's docs: proxy
// config_settings, proxy/configs, routing, caching, logging, alerting).
const VALUES = {
  'general_settings.allow_client_side_credentials': true,
  'general_settings.alerting': ['slack'],
  'general_settings.alerting_threshold': 300,
  'general_settings.alert_types': ['llm_exceptions', 'llm_too_slow'],
  'general_settings.alert_to_webhook_url': { llm_exceptions: 'https://hooks.slack.example/services/T0/B0/x' },
  'general_settings.alerting_args': { daily_report_frequency: 43200, report_check_interval: 3600 },
  'general_settings.proxy_batch_write_at': 60,
  'general_settings.proxy_config_reload_interval_seconds': 60,
  'general_settings.background_health_checks': true,
  'general_settings.health_check_interval': 300,
  'general_settings.health_check_details': false,
  'general_settings.user_api_key_cache_ttl': 60,
  'general_settings.allow_requests_on_db_unavailable': true,
  'general_settings.disable_spend_logs': true,
  'general_settings.disable_reset_budget': true,
  'general_settings.disable_error_logs': true,
  'general_settings.disable_master_key_return': true,
  'general_settings.disable_adding_master_key_hash_to_db': true,
  'general_settings.max_parallel_requests': 10,
  'general_settings.global_max_parallel_requests': 100,
  'general_settings.custom_auth': 'custom_auth.user_api_key_auth',
  'general_settings.enable_jwt_auth': true,
  'general_settings.litellm_jwtauth': { user_id_jwt_field: 'sub', admin_jwt_scope: 'litellm_proxy_admin' },
  'general_settings.allowed_routes': ['/v1/chat/completions', '/v1/models'],
  'general_settings.public_routes': ['LiteLLMRoutes.public_routes', '/spend/calculate'],
  'general_settings.admin_only_routes': ['/key/generate'],
  'general_settings.infer_model_from_keys': true,
  'general_settings.forward_client_headers_to_llm_api': true,
  'general_settings.forward_openai_org_id': true,
  'general_settings.pass_through_endpoints': [{ path: '/v1/rerank', target: 'https://api.cohere.com/v1/rerank', headers: { 'content-type': 'application/json' } }],
  'general_settings.ui_access_mode': 'admin_only',
  'general_settings.database_connection_pool_limit': 10,
  'general_settings.database_connection_timeout': 60,
  'general_settings.dangerously_allow_mock_testing_request_params': true,
  'general_settings.maximum_spend_logs_retention_period': '7d',
  'general_settings.store_prompts_in_spend_logs': true,
  'general_settings.allowed_ips': ['10.0.0.1', '192.168.1.0/24'],
  'general_settings.enforced_params': ['user', 'metadata.generation_name'],
  'general_settings.enforce_user_param': true,
  'general_settings.completion_model': 'gpt-4o',
  'general_settings.embedding_model': 'text-embedding-3-small',
  'general_settings.image_generation_model': 'dall-e-3',
  'general_settings.moderation_model': 'omni-moderation-latest',
  'general_settings.key_management_system': 'aws_kms',
  'general_settings.key_management_settings': { hosted_keys: ['OPENAI_API_KEY'], store_virtual_keys: true },

  'litellm_settings.cache': true,
  'litellm_settings.cache_params': { type: 'redis', host: '127.0.0.1', port: 6379, ttl: 600 },
  'litellm_settings.callbacks': ['langfuse'],
  'litellm_settings.success_callback': ['langfuse'],
  'litellm_settings.failure_callback': ['sentry'],
  'litellm_settings.service_callbacks': ['datadog', 'prometheus_system'],
  'litellm_settings.max_budget': 100,
  'litellm_settings.budget_duration': '30d',
  'litellm_settings.json_logs': true,
  'litellm_settings.set_verbose': true,
  'litellm_settings.default_team_settings': [{ team_id: 'team-1', success_callback: ['langfuse'] }],
  'litellm_settings.key_generation_settings': { team_key_generation: { allowed_team_member_roles: ['admin'] } },
  'litellm_settings.upperbound_key_generate_params': { max_budget: 100, duration: '30d' },
  'litellm_settings.default_key_generate_params': { max_budget: 10 },
  'litellm_settings.default_team_params': { max_budget: 10, budget_duration: '30d' },
  'litellm_settings.enable_redis_auth_cache': true,
  'litellm_settings.require_auth_for_metrics_endpoint': true,
  'litellm_settings.check_provider_endpoint': true,
  'litellm_settings.modify_params': true,
  'litellm_settings.force_ipv4': true,
  'litellm_settings.turn_off_message_logging': true,
  'litellm_settings.redact_user_api_key_info': true,
  'litellm_settings.guardrails': [{ prompt_injection: { callbacks: ['lakera_prompt_injection'], default_on: true } }],
  'litellm_settings.post_call_rules': 'post_call_rules.my_custom_rule',
  'litellm_settings.custom_provider_map': [{ provider: 'my-custom-llm', custom_handler: 'custom_handler.my_custom_llm' }],

  'router_settings.model_group_retry_policy': { 'gpt-4o': { RateLimitErrorRetries: 2, TimeoutErrorRetries: 1 } },
  'router_settings.cache_kwargs': { type: 'redis', host: '127.0.0.1', port: 6379 },
  'router_settings.client_ttl': 3600,
  'router_settings.cache_responses': true,
  'router_settings.caching_groups': [['gpt-4o', 'gpt-4o-mini']],
  'router_settings.optional_pre_call_checks': ['prompt_caching', 'router_budget_limiting'],
  'router_settings.provider_budget_config': { openai: { budget_limit: 100, time_period: '1d' } },
  'router_settings.ignore_invalid_deployments': true,
  'router_settings.set_verbose': true,
  'router_settings.debug_level': 'DEBUG',
  'router_settings.model_group_affinity_config': { 'gpt-4o': ['session_id'] },
  'router_settings.deployment_affinity_ttl_seconds': 3600,

  'top-level.guardrails': [{ guardrail_name: 'aporia-pre-guard', litellm_params: { guardrail: 'aporia', mode: 'during_call', api_base: 'https://aporia.example' } }],
  'top-level.assistant_settings': { custom_llm_provider: 'openai', litellm_params: { api_key: 'sk-settings-test-0000' } },
  'top-level.finetune_settings': [{ custom_llm_provider: 'openai', api_key: 'sk-settings-test-0000' }],
  'top-level.files_settings': [{ custom_llm_provider: 'openai', api_key: 'sk-settings-test-0000' }],
  'top-level.default_vertex_config': { vertex_project: 'my-project', vertex_location: 'us-central1' },
  'top-level.callback_settings': { otel: { message_logging: false } },
  'top-level.mcp_servers': { zapier_mcp: { url: 'https://actions.zapier.example/mcp/sse' } },
  'top-level.mcp_aliases': { zapier: 'zapier_mcp' },
  'top-level.search_tools': [{ search_tool_name: 'web', litellm_params: { search_provider: 'tavily', api_key: 'tvly-settings-test' } }],
  'top-level.prompts': [{ prompt_id: 'hello', litellm_params: { prompt_integration: 'dotprompt', prompt_directory: '/tmp/prompts' } }],
  'top-level.vector_store_registry': [{ vector_store_name: 'kb', litellm_params: { vector_store_id: 'vs-1', custom_llm_provider: 'bedrock' } }],
  'top-level.agents': [{ agent_name: 'helper', litellm_params: { model: 'gpt-4o' } }],
};

/** A value for a row the table above does not know yet, guessed from the name. */
function guess(key) {
  if (/^(enable|disable|allow|use|is|force|require|turn_off|redact|store)_/.test(key)) return true;
  if (/(interval|ttl|seconds|threshold|limit|timeout|size|max|budget|requests)/.test(key)) return 60;
  if (/(settings|config|args|params|kwargs|map)$/.test(key)) return { example: 'value' };
  if (/s$/.test(key)) return ['example'];
  return 'example';
}
const valueOf = (r) => {
  const k = `${r.section}.${r.key}`;
  return Object.prototype.hasOwnProperty.call(VALUES, k) ? VALUES[k] : guess(r.key);
};
const settingName = (r) => (r.section === 'top-level' ? r.key : `${r.section}.${r.key}`);

const MODEL_LIST = [{ model_name: 'm', litellm_params: { model: 'openai/m', api_base: 'http://127.0.0.1:9/v1', api_key: 'sk-settings-test-0000' } }];

/** A config with these rows set; JSON is YAML, and each key gets its own line for file:line. */
function configObj(rows) {
  const c = { model_list: MODEL_LIST };
  for (const r of rows) {
    if (r.section === 'top-level') c[r.key] = valueOf(r);
    else (c[r.section] ||= {})[r.key] = valueOf(r);
  }
  return c;
}
const configWith = (rows) => JSON.stringify(configObj(rows), null, 2);

function validate(rows, dir) {
  const cfg = path.join(dir, 'config.yaml');
  fs.writeFileSync(cfg, configWith(rows));
  return new Promise((resolve) => {
    const child = spawn(moongateBin, ['--config', cfg, '--validate_config'], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LITELLM_LOG: 'WARNING' },
    });
    let so = '';
    let se = '';
    child.stdout.on('data', (d) => { so += d; });
    child.stderr.on('data', (d) => { se += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('close', (code, sig) => { clearTimeout(t); resolve({ code, sig, stdout: so, stderr: se }); }); // after stdio drained
  });
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('`moongate settings` prints one markdown table whose every row parses', () => {
  assert.equal(out.status, 0, out.stderr);
  const lines = SETTINGS_MD.trimEnd().split('\n');
  assert.equal(lines[0], '| section | setting | moongate | what happens |');
  assert.equal(lines[1], '|---|---|---|---|');
  assert.equal(ROWS.length, lines.length - 2, 'every line after the header is a row');
  assert.deepEqual(ROWS.filter((r) => r.status.startsWith('unknown')), []);
  const names = ROWS.map((r) => `${r.section}.${r.key}`);
  assert.equal(new Set(names).size, names.length, 'no row twice');
  assert.ok(ROWS.some((r) => r.status === 'warn') && ROWS.some((r) => r.status === 'refused'));
});

test('every "accepted, not implemented" row warns, naming the setting, its effect and its line', async () => {
  const warn = ROWS.filter((r) => r.status === 'warn' && CONFIG_SECTIONS.includes(r.section));
  assert.ok(warn.length > 50, `${warn.length} rows`);
  const d = tmpDir('mg-settings-');
  const bad = [];
  await pool(warn.length, 2, async (i) => {
    const r = warn[i];
    const dir = path.join(d, String(i));
    fs.mkdirSync(dir);
    const res = await validate([r], dir);
    const want = new RegExp(`config\\.yaml:\\d+:\\d+: accepted, not implemented in moongate: ${escapeRe(settingName(r))}; effect: ${escapeRe(r.effect)}$`, 'm');
    if (res.code !== 0) bad.push(`${settingName(r)}=${JSON.stringify(valueOf(r))}: exit ${res.code}: ${res.stdout}${res.stderr}`);
    else if (!want.test(res.stderr)) bad.push(`${settingName(r)}: no warning naming it: ${res.stderr}`);
  });
  assert.deepEqual(bad, []);
});

test('every "refused" row makes --validate_config exit 1, naming the setting', async () => {
  const refused = ROWS.filter((r) => r.status === 'refused' && CONFIG_SECTIONS.includes(r.section));
  assert.ok(refused.length > 5, `${refused.length} rows`);
  const d = tmpDir('mg-settings-');
  const bad = [];
  await pool(refused.length, 2, async (i) => {
    const r = refused[i];
    const dir = path.join(d, String(i));
    fs.mkdirSync(dir);
    const res = await validate([r], dir);
    const text = res.stdout + res.stderr;
    const want = new RegExp(`config error: \\S*config\\.yaml:\\d+:\\d+: ${escapeRe(settingName(r))} is not implemented in moongate`);
    if (res.code !== 1) bad.push(`${settingName(r)}: exit ${res.code} (want 1): ${text}`);
    else if (!want.test(text)) bad.push(`${settingName(r)}: the error does not name it: ${text}`);
  });
  assert.deepEqual(bad, []);
});

test('a setting moongate has never heard of is warned about, not taken in silence', async () => {
  const d = tmpDir('mg-settings-');
  const res = await validate([{ section: 'router_settings', key: 'no_such_setting_t10' }, { section: 'general_settings', key: 'no_such_general_t10' }], d);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /router_settings\.no_such_setting_t10 is not a setting moongate knows/);
  assert.match(res.stderr, /general_settings\.no_such_general_t10 is not a setting moongate knows/);
});

test('a running gateway lists every warned setting, with its effect, in /moongate/state', async () => {
  const warn = ROWS.filter((r) => r.status === 'warn' && CONFIG_SECTIONS.includes(r.section));
  const config = configObj(warn);
  config.general_settings = { ...config.general_settings, master_key: 'sk-settings-master-0001' };
  const gw = await startGateway({ config });
  try {
    const st = await gw.state();
    const listed = new Map((st.settings_not_implemented || []).map((x) => [x.setting, x.effect]));
    const missing = warn.filter((r) => listed.get(settingName(r)) !== r.effect).map(settingName);
    assert.deepEqual(missing, [], `listed: ${JSON.stringify(st.settings_not_implemented)}`);
    assert.equal(listed.size, warn.length, 'nothing else is listed');
    // and the start-up log warned about each, once
    const stderr = gw.output().stderr;
    const twice = warn.filter((r) => stderr.split(`accepted, not implemented in moongate: ${settingName(r)};`).length - 1 !== 1).map(settingName);
    assert.deepEqual(twice, [], 'each warned exactly once at start');
    await assertCleanStop(gw);
  } finally {
    await gw.stop();
  }
});

test('every setting issue 10 names as "taken in silence" has a row: implemented, warned or refused', () => {
  const named = [
    'litellm_settings.cache', 'litellm_settings.cache_params', 'litellm_settings.callbacks',
    'litellm_settings.success_callback', 'litellm_settings.failure_callback', 'litellm_settings.max_budget',
    'router_settings.enable_pre_call_checks', 'router_settings.enable_tag_filtering',
    'router_settings.optional_pre_call_checks', 'router_settings.provider_budget_config',
    'router_settings.default_max_parallel_requests', 'router_settings.cache_responses',
    'router_settings.caching_groups', 'request body.guardrails', 'request body.caching',
    'litellm_settings.drop_params',
  ];
  const have = new Set(ROWS.map((r) => `${r.section}.${r.key}`));
  assert.deepEqual(named.filter((n) => !have.has(n)), []);
  // the ones the issue says to implement now are implemented
  const now = ['litellm_settings.drop_params', 'router_settings.enable_pre_call_checks',
    'router_settings.enable_tag_filtering', 'router_settings.default_max_parallel_requests'];
  assert.deepEqual(now.filter((n) => ROWS.find((r) => `${r.section}.${r.key}` === n).status !== 'implemented'), []);
});

test('the request-body rows are the ones limits_routing.test.mjs checks', () => {
  const body = ROWS.filter((r) => r.section === 'request body').map((r) => `${r.key}:${r.status}`).sort();
  assert.deepEqual(body, ['cache:warn', 'caching:warn', 'guardrails:refused']);
  assert.deepEqual(ROWS.filter((r) => ![...CONFIG_SECTIONS, 'request body'].includes(r.section)), [], 'no other section');
});

test('README.md holds the exact output of `moongate settings` between the settings markers', () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8').split('\n');
    const b = readme.indexOf('<!-- settings:begin -->');
    const e = readme.indexOf('<!-- settings:end -->');
    assert.ok(b >= 0, 'README.md has a line <!-- settings:begin -->');
    assert.ok(e > b, 'README.md has a line <!-- settings:end --> after it');
    assert.equal(readme.indexOf('<!-- settings:begin -->', b + 1), -1, 'one block only');
    // the lines between, without blank lines at either end (markdown may want them)
    const block = readme.slice(b + 1, e);
    while (block.length && block[0].trim() === '') block.shift();
    while (block.length && block[block.length - 1].trim() === '') block.pop();
    assert.equal(`${block.join('\n')}\n`, SETTINGS_MD, 'run `moongate settings` and paste its output between the markers');
  });
