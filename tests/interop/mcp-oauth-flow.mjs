#!/usr/bin/env node
// Interop check: the official MCP TypeScript SDK (a client nobody here wrote)
// runs its own OAuth flow against a running `regwatch up`, and this script
// plays the user's browser in between.
//
// Usage:
//   MCP_URL=http://127.0.0.1:M/mcp RW_USER=alice RW_PASSWORD=... \
//     node mcp-oauth-flow.mjs                       # DCR: register, sign in, consent, tools
//   ... node mcp-oauth-flow.mjs --cimd http://127.0.0.1:P/client.json
//                                                 # CIMD: client_id is that URL, this
//                                                 # script serves the document on P
//   ... node mcp-oauth-flow.mjs --cimd URL --expect-refusal
//                                                 # the AS must refuse the document
//
// Output: one JSON object per line on stdout, one per step; the last line is
// {"step":"done","ok":…,"failures":[…]}. Exit 0 only when every expectation
// held, 1 when one did not, 2 on a usage error. Diagnostics go to stderr.
// Nothing secret is printed: no password, token, authorization code, PKCE
// verifier, cookie or CSRF value.
//
// What "refusal" means in --expect-refusal mode (all must hold):
//   - the AS metadata advertises `client_id_metadata_document_supported: true`
//     (so the refusal is about this document, not about CIMD in general);
//   - the authorization endpoint does not lead to an authorization code: either
//     it answers the first request itself with an HTTP 4xx (RFC 6749 §4.1.2.1:
//     an invalid client_id MUST NOT be redirected to the redirect_uri), or the
//     browser lands on the callback with `error` and no `code`;
//   - the AS never fetched the loopback document (its SSRF guard refused it
//     before any request: the document server counts hits);
//   - no token was issued.
//
// CIMD and the SDK: SDK 1.32 uses `clientMetadataUrl` only when the AS metadata
// says `client_id_metadata_document_supported: true` AND the URL is https with a
// non-root path (`isHttpsUrl` in client/auth.js); an http URL makes `auth()`
// throw `InvalidClientMetadataError`. regwatch's development flag only lets the
// AS fetch loopback documents over plain http, so for an http URL this script
// hands the URL to the SDK as pre-registered client information instead (the
// same wire flow: no registration request, `client_id=<URL>` in the
// authorization and token requests) after checking the AS metadata itself,
// and says so in a step. An https URL goes through `clientMetadataUrl`.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, discoverOAuthServerInfo, isHttpsUrl } from '@modelcontextprotocol/sdk/client/auth.js';

const SCOPE = 'mcp:read mcp:write';
// `update_item` takes {id, <its text field>}: the field name is read from the
// tool's input schema (regwatch calls it `text`), the values are fixed.
const ALLOWED_TOOL = { name: 'update_item', arguments: { id: 'a', value: 'x' } };
const DENIED_TOOL = { name: 'delete_item', arguments: { id: 'a' }, scope: 'mcp:delete' };
const MAX_HOPS = 20;
const TIMEOUT_MS = Number(process.env.RW_TIMEOUT_MS ?? 60_000);

// ---------------------------------------------------------------- output

const failures = [];
function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}
function expect(cond, what, detail = {}) {
    if (!cond) {
        failures.push(what);
        emit({ step: 'expectation_failed', what, ...detail });
    }
    return cond;
}
function finish(code) {
    const ok = code === 0 && failures.length === 0;
    emit({ step: 'done', ok, failures });
    // Let stdout drain before exiting.
    process.exitCode = ok ? 0 : code || 1;
    setImmediate(() => process.exit(process.exitCode));
}
function usage(msg) {
    process.stderr.write(`${msg}\nusage: MCP_URL=… RW_USER=… RW_PASSWORD=… node mcp-oauth-flow.mjs [--cimd <http(s)://host:port/path>] [--expect-refusal]\n`);
    process.exit(2);
}

// ---------------------------------------------------------------- arguments

function parseArgs(argv) {
    const out = { cimd: undefined, expectRefusal: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--cimd') {
            out.cimd = argv[++i];
            if (!out.cimd) usage('--cimd needs a URL');
        } else if (a.startsWith('--cimd=')) {
            out.cimd = a.slice('--cimd='.length);
        } else if (a === '--expect-refusal') {
            out.expectRefusal = true;
        } else {
            usage(`unknown argument: ${a}`);
        }
    }
    if (out.expectRefusal && !out.cimd) usage('--expect-refusal is defined for --cimd only');
    return out;
}

const args = parseArgs(process.argv.slice(2));
const MCP_URL = process.env.MCP_URL;
const RW_USER = process.env.RW_USER;
const RW_PASSWORD = process.env.RW_PASSWORD;
if (!MCP_URL || !RW_USER || !RW_PASSWORD) usage('MCP_URL, RW_USER and RW_PASSWORD must be set');

// ---------------------------------------------------------------- small HTML "browser"

/** Thrown by the browser when the AS answers with an error instead of a page to go on with. */
class AuthorizationRefused extends Error {
    constructor(detail) {
        super(`authorization refused: ${JSON.stringify(detail)}`);
        this.detail = detail;
    }
}
/** Thrown by the provider when the SDK asks for a second authorization (step-up). */
class StepUpRefused extends Error {}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'" };
function decodeEntities(s) {
    return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+\d*);/gi, (m, e) => {
        if (e[0] === '#') {
            const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
            return Number.isFinite(n) ? String.fromCodePoint(n) : m;
        }
        return ENTITIES[e.toLowerCase()] ?? m;
    });
}
function attrs(tag) {
    const out = {};
    const re = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g;
    // Skip the tag name.
    const body = tag.replace(/^<\s*[a-z]+/i, '').replace(/\/?>$/, '');
    let m;
    while ((m = re.exec(body))) {
        out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
    }
    return out;
}
function textOf(html) {
    return decodeEntities(html.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]+>/g, ' '))
        .replace(/\s+/g, ' ')
        .trim();
}
/** Every <form> with its method, action, successful fields and submit buttons. */
function parseForms(html) {
    const forms = [];
    const re = /<form\b[^>]*>([\s\S]*?)<\/form\s*>/gi;
    let m;
    while ((m = re.exec(html))) {
        const open = m[0].match(/^<form\b[^>]*>/i)[0];
        const a = attrs(open);
        const inner = m[1];
        const fields = [];
        for (const t of inner.match(/<input\b[^>]*>/gi) ?? []) {
            const i = attrs(t);
            if (!i.name || 'disabled' in i) continue;
            const type = (i.type ?? 'text').toLowerCase();
            if (type === 'submit' || type === 'button' || type === 'image' || type === 'reset' || type === 'file') continue;
            if ((type === 'checkbox' || type === 'radio') && !('checked' in i)) continue;
            fields.push({ name: i.name, value: i.value ?? (type === 'checkbox' ? 'on' : ''), type });
        }
        for (const t of inner.match(/<textarea\b[^>]*>[\s\S]*?<\/textarea\s*>/gi) ?? []) {
            const i = attrs(t.match(/^<textarea\b[^>]*>/i)[0]);
            if (i.name) fields.push({ name: i.name, value: decodeEntities(t.replace(/^<textarea\b[^>]*>|<\/textarea\s*>$/gi, '')), type: 'textarea' });
        }
        const buttons = [];
        for (const t of inner.match(/<button\b[^>]*>/gi) ?? []) {
            const b = attrs(t);
            if ((b.type ?? 'submit').toLowerCase() === 'submit' && b.name) buttons.push({ name: b.name, value: b.value ?? '' });
        }
        for (const t of inner.match(/<input\b[^>]*>/gi) ?? []) {
            const b = attrs(t);
            if ((b.type ?? '').toLowerCase() === 'submit' && b.name) buttons.push({ name: b.name, value: b.value ?? '' });
        }
        forms.push({ method: (a.method ?? 'get').toLowerCase(), action: a.action ?? '', fields, buttons, text: textOf(inner) });
    }
    return forms;
}

/**
 * A cookie jar keyed by origin (cookies go back only to the origin that set
 * them; Domain/Path attributes are ignored, which is enough for one AS).
 */
class CookieJar {
    constructor() {
        this.byOrigin = new Map();
    }
    store(url, res) {
        const origin = new URL(url).origin;
        const jar = this.byOrigin.get(origin) ?? new Map();
        for (const line of res.headers.getSetCookie()) {
            const [pair, ...attributes] = line.split(';');
            const eq = pair.indexOf('=');
            if (eq <= 0) continue;
            const name = pair.slice(0, eq).trim();
            const value = pair.slice(eq + 1).trim();
            const maxAge = attributes.map(x => x.trim().toLowerCase()).find(x => x.startsWith('max-age='));
            if (value === '' || (maxAge && Number(maxAge.slice(8)) <= 0)) jar.delete(name);
            else jar.set(name, value);
        }
        this.byOrigin.set(origin, jar);
    }
    header(url) {
        const jar = this.byOrigin.get(new URL(url).origin);
        if (!jar || jar.size === 0) return undefined;
        return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    }
    names(url) {
        return [...(this.byOrigin.get(new URL(url).origin)?.keys() ?? [])];
    }
}

function isCallback(loc, redirectUrl) {
    const r = new URL(redirectUrl);
    return loc.origin === r.origin && loc.pathname === r.pathname;
}

/**
 * Plays the user's browser from `authorizationUrl` until the AS redirects to
 * the loopback callback: signs in on a page with a password field, approves
 * on a page with a `decision=approve` button. Returns the callback URL.
 */
async function playBrowser(authorizationUrl, redirectUrl) {
    const jar = new CookieJar();
    let url = new URL(authorizationUrl);
    let init = { method: 'GET' };
    const seen = { signIn: 0, consent: 0 };
    for (let hop = 0; hop < MAX_HOPS; hop++) {
        const headers = { accept: 'text/html' };
        const cookie = jar.header(url);
        if (cookie) headers.cookie = cookie;
        if (init.body) headers['content-type'] = 'application/x-www-form-urlencoded';
        const res = await fetch(url, { ...init, headers, redirect: 'manual' });
        jar.store(url, res);
        const where = `${init.method} ${url.pathname}`;
        if (res.status >= 300 && res.status < 400) {
            await res.body?.cancel();
            const location = res.headers.get('location');
            if (!location) throw new AuthorizationRefused({ at: where, status: res.status, reason: 'redirect without Location' });
            const next = new URL(location, url);
            emit({ step: 'browser', hop, request: where, status: res.status, location: next.origin + next.pathname });
            if (isCallback(next, redirectUrl)) return { callback: next, hop, seen };
            url = next;
            init = { method: 'GET' };
            continue;
        }
        const body = await res.text();
        const contentType = res.headers.get('content-type') ?? '';
        if (res.status !== 200) {
            throw new AuthorizationRefused({
                at: where,
                hop,
                status: res.status,
                content_type: contentType,
                error: oauthErrorIn(body, contentType),
                excerpt: textOf(body).slice(0, 300)
            });
        }
        const forms = parseForms(body).filter(f => f.method === 'post');
        const signIn = forms.find(f => f.fields.some(x => x.type === 'password'));
        const consent = forms.find(f => f.buttons.some(b => b.name === 'decision' && b.value === 'approve'));
        const form = signIn ?? consent;
        if (!form) {
            throw new AuthorizationRefused({ at: where, hop, status: res.status, reason: 'page without a sign-in or consent form', excerpt: textOf(body).slice(0, 300) });
        }
        const params = new URLSearchParams();
        for (const f of form.fields) {
            if (f.name === 'username') params.append(f.name, RW_USER);
            else if (f.name === 'password') params.append(f.name, RW_PASSWORD);
            else params.append(f.name, f.value);
        }
        let kind;
        if (form === signIn) {
            kind = 'sign-in';
            seen.signIn++;
            if (seen.signIn > 1) throw new AuthorizationRefused({ at: where, hop, reason: 'sign-in page shown again (credentials refused?)', excerpt: textOf(body).slice(0, 300) });
            if (!params.has('username')) params.append('username', RW_USER);
            const button = form.buttons[0];
            if (button) params.append(button.name, button.value);
        } else {
            kind = 'consent';
            seen.consent++;
            if (seen.consent > 1) throw new AuthorizationRefused({ at: where, hop, reason: 'consent page shown again' });
            params.append('decision', 'approve');
            seen.consentText = form.text;
            seen.consentPage = textOf(body);
        }
        const action = new URL(form.action || url.href, url);
        emit({
            step: 'browser',
            hop,
            request: where,
            status: res.status,
            page: kind,
            form_action: action.pathname,
            fields: form.fields.map(f => f.name),
            buttons: form.buttons.map(b => `${b.name}=${b.value}`),
            cookies: jar.names(url)
        });
        url = action;
        init = { method: 'POST', body: params.toString() };
    }
    throw new AuthorizationRefused({ reason: `more than ${MAX_HOPS} hops` });
}

function oauthErrorIn(body, contentType) {
    if (contentType.includes('json')) {
        try {
            return JSON.parse(body).error;
        } catch {
            return undefined;
        }
    }
    const m = textOf(body).match(/\b(invalid_client|invalid_request|unauthorized_client|access_denied|invalid_scope|invalid_target|server_error|temporarily_unavailable|unsupported_response_type)\b/);
    return m?.[1];
}

// ---------------------------------------------------------------- the OAuth client provider

/** In-memory `OAuthClientProvider` whose `redirectToAuthorization` plays the browser. */
class InteropProvider {
    constructor({ redirectUrl, clientMetadata, clientMetadataUrl, preRegistered }) {
        this._redirectUrl = redirectUrl;
        this._clientMetadata = clientMetadata;
        if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
        this._client = preRegistered;
        this._announced = new Set();
        this._tokens = undefined;
        this._verifier = undefined;
        this._state = undefined;
        this.discovery = undefined;
        this.authorizations = 0;
        this.callback = undefined;
        this.refusal = undefined;
        this.stepUp = undefined;
        this.tokenSaves = 0;
    }
    get redirectUrl() {
        return this._redirectUrl;
    }
    get clientMetadata() {
        return this._clientMetadata;
    }
    state() {
        this._state = randomBytes(16).toString('base64url');
        return this._state;
    }
    clientInformation() {
        return this._client;
    }
    saveClientInformation(info) {
        // Announced once per client_id: on DCR when the SDK stores the
        // registration; on CIMD when it stores (https) or first binds to the
        // issuer (pre-registered http URL) the URL client_id.
        const isNew = !this._announced.has(info.client_id);
        this._announced.add(info.client_id);
        this._client = info;
        if (isNew) {
            emit({
                step: 'registered',
                client_id: info.client_id,
                method: args.cimd ? 'cimd' : 'dcr',
                has_client_secret: info.client_secret !== undefined,
                token_endpoint_auth_method: info.token_endpoint_auth_method,
                scope: info.scope,
                redirect_uris: info.redirect_uris
            });
        }
    }
    tokens() {
        return this._tokens;
    }
    saveTokens(tokens) {
        this._tokens = tokens;
        this.tokenSaves++;
        emit({
            step: 'token',
            n: this.tokenSaves,
            token_type: tokens.token_type,
            scope: tokens.scope,
            expires_in: tokens.expires_in,
            has_refresh_token: Boolean(tokens.refresh_token)
        });
    }
    saveCodeVerifier(v) {
        this._verifier = v;
    }
    codeVerifier() {
        if (!this._verifier) throw new Error('no code verifier saved');
        return this._verifier;
    }
    saveDiscoveryState(s) {
        this.discovery = s;
    }
    invalidateCredentials(which) {
        emit({ step: 'invalidate_credentials', which });
        if (which === 'all' || which === 'client') this._client = undefined;
        if (which === 'all' || which === 'tokens') this._tokens = undefined;
        if (which === 'all' || which === 'verifier') this._verifier = undefined;
    }
    async redirectToAuthorization(authorizationUrl) {
        this.authorizations++;
        const u = new URL(authorizationUrl);
        const q = u.searchParams;
        const summary = {
            step: 'authorize',
            n: this.authorizations,
            endpoint: u.origin + u.pathname,
            client_id: q.get('client_id'),
            scope: q.get('scope'),
            resource: q.get('resource'),
            code_challenge_method: q.get('code_challenge_method'),
            has_state: q.has('state'),
            redirect_uri: q.get('redirect_uri')
        };
        emit(summary);
        if (this.authorizations > 1) {
            // A second authorization is the SDK stepping up after 403
            // insufficient_scope. The user would be asked to grant more; this
            // user declines, so the call stays refused and nothing loops.
            this.stepUp = { scope: q.get('scope') };
            emit({ step: 'step_up_refused', scope: q.get('scope') });
            throw new StepUpRefused(`step-up authorization for scope "${q.get('scope')}" declined`);
        }
        const sentState = q.get('state');
        let result;
        try {
            result = await playBrowser(u, this._redirectUrl);
        } catch (e) {
            if (e instanceof AuthorizationRefused) {
                this.refusal = e.detail;
                emit({ step: 'authorization_refused', ...e.detail });
            }
            throw e;
        }
        const cb = result.callback.searchParams;
        const issuer = this.discovery?.authorizationServerMetadata?.issuer;
        const cbInfo = {
            step: 'callback',
            has_code: cb.has('code'),
            error: cb.get('error') ?? undefined,
            error_description: cb.get('error_description') ?? undefined,
            state_matches: cb.get('state') === sentState,
            iss: cb.get('iss') ?? undefined,
            iss_matches: cb.get('iss') === issuer,
            consent_shows_client_name: result.seen.consentPage?.includes(this._clientMetadata.client_name) ?? false
        };
        emit(cbInfo);
        if (cb.has('error') || !cb.has('code')) {
            this.refusal = { at: 'callback', error: cbInfo.error ?? 'no code' };
            throw new AuthorizationRefused(this.refusal);
        }
        this.callback = { code: cb.get('code'), state: cb.get('state'), iss: cb.get('iss'), seen: result.seen, cbInfo };
    }
}

// ---------------------------------------------------------------- loopback servers

function listen(server, port) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve(server.address().port));
    });
}

/** The redirect target. The browser stops before it; it answers anyway if hit. */
async function startCallbackServer() {
    const server = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('regwatch interop: you may close this window\n');
    });
    const port = await listen(server, 0);
    return { server, url: `http://127.0.0.1:${port}/callback` };
}

/** Serves the client ID metadata document at `docUrl` and counts fetches. */
async function startDocumentServer(docUrl, redirectUrl) {
    const u = new URL(docUrl);
    const doc = {
        client_id: docUrl,
        client_name: 'regwatch cimd interop',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        // What a DCR client would register: regwatch gives a client without
        // `scope` only its default scopes and refuses any other at /authorize.
        scope: SCOPE
    };
    const state = { hits: 0, other: 0 };
    const server = http.createServer((req, res) => {
        if (req.method === 'GET' && req.url === u.pathname + u.search) {
            state.hits++;
            res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
            res.end(JSON.stringify(doc));
        } else {
            state.other++;
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('not found\n');
        }
    });
    if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) || !u.port) {
        usage(`--cimd URL must be http on a loopback host with an explicit port (this script serves it), got ${docUrl}`);
    }
    await listen(server, Number(u.port));
    return { server, state, doc };
}

// ---------------------------------------------------------------- the flow

/** Records the last MCP-endpoint response with a WWW-Authenticate header, for the report. */
function recordingFetch(mcpUrl, log) {
    return async (url, init) => {
        const res = await fetch(url, init);
        if (String(url) === String(mcpUrl) && res.headers.get('www-authenticate')) {
            log.push({ status: res.status, wwwAuthenticate: res.headers.get('www-authenticate') });
        }
        return res;
    };
}

function challengeParams(header) {
    const out = {};
    if (!header) return out;
    const re = /([a-zA-Z_]+)=(?:"([^"]*)"|([^\s,]+))/g;
    let m;
    while ((m = re.exec(header))) out[m[1]] = m[2] ?? m[3];
    return out;
}

async function main() {
    const callback = await startCallbackServer();
    const cleanups = [() => callback.server.close()];
    let docServer;
    try {
        const mcpUrl = new URL(MCP_URL);
        const clientMetadata = {
            client_name: 'regwatch interop',
            redirect_uris: [callback.url],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
            scope: SCOPE
        };

        let providerOpts = { redirectUrl: callback.url, clientMetadata };
        if (args.cimd) {
            clientMetadata.client_name = 'regwatch cimd interop';
            docServer = await startDocumentServer(args.cimd, callback.url);
            cleanups.push(() => docServer.server.close());
            emit({ step: 'cimd_document_served', url: args.cimd });
            // The SDK's own rule, checked here because the http case bypasses it.
            const info = await discoverOAuthServerInfo(mcpUrl);
            const supported = info.authorizationServerMetadata?.client_id_metadata_document_supported === true;
            const sdkPath = isHttpsUrl(args.cimd);
            emit({
                step: 'cimd_mode',
                as_supports_cimd: supported,
                via: sdkPath ? 'sdk clientMetadataUrl' : 'pre-registered client_id (SDK 1.32 accepts only an https clientMetadataUrl)'
            });
            expect(supported, 'AS metadata advertises client_id_metadata_document_supported: true');
            if (!supported) return finish(1);
            providerOpts = sdkPath
                ? { ...providerOpts, clientMetadataUrl: args.cimd }
                : { ...providerOpts, preRegistered: { client_id: args.cimd } };
        }
        const provider = new InteropProvider(providerOpts);
        const challenges = [];
        const fetchFn = recordingFetch(mcpUrl, challenges);

        // 1. First connect: the SDK meets 401, discovers, registers (DCR) and
        //    sends the user to the authorization endpoint, then throws
        //    UnauthorizedError (the SDK's documented pattern).
        let transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: fetchFn });
        let client = new Client({ name: 'regwatch-interop', version: '0.1.0' });
        let firstError;
        try {
            await client.connect(transport);
        } catch (e) {
            firstError = e;
        }
        const first401 = challenges.find(c => c.status === 401);
        emit({
            step: 'discovered',
            challenge_401: first401 ? challengeParams(first401.wwwAuthenticate) : undefined,
            authorization_server: provider.discovery?.authorizationServerUrl,
            issuer: provider.discovery?.authorizationServerMetadata?.issuer,
            resource: provider.discovery?.resourceMetadata?.resource,
            scopes_supported: provider.discovery?.resourceMetadata?.scopes_supported,
            cimd_supported: provider.discovery?.authorizationServerMetadata?.client_id_metadata_document_supported,
            iss_parameter_supported: provider.discovery?.authorizationServerMetadata?.authorization_response_iss_parameter_supported
        });

        if (args.expectRefusal) {
            const refused = provider.refusal !== undefined;
            emit({
                step: 'refusal',
                observed: refused,
                detail: provider.refusal,
                document_fetches: docServer.state.hits,
                connect_error: firstError?.constructor?.name
            });
            expect(refused, 'the authorization endpoint refused the client (4xx page or error redirect)');
            expect(!provider.callback, 'no authorization code was issued');
            expect(provider.tokenSaves === 0, 'no token was issued');
            expect(docServer.state.hits === 0, 'the AS did not fetch the loopback document', { fetches: docServer.state.hits });
            if (provider.refusal && provider.refusal.at !== 'callback') {
                expect(provider.refusal.hop === 0 && provider.refusal.status >= 400 && provider.refusal.status < 500,
                    'the refusal is an HTTP 4xx answer to the authorization request itself', { detail: provider.refusal });
            }
            return finish(0);
        }

        if (!(firstError instanceof UnauthorizedError)) {
            expect(false, 'first connect throws UnauthorizedError', { error: describe(firstError) });
            return finish(1);
        }
        expect(Boolean(first401), 'the MCP server challenged with 401 + WWW-Authenticate');
        if (first401) expect(Boolean(challengeParams(first401.wwwAuthenticate).resource_metadata), '401 challenge names resource_metadata (RFC 9728 §5.1)');
        if (!expect(Boolean(provider.callback), 'the browser reached the callback with a code')) return finish(1);
        const cb = provider.callback;
        const iss = provider.discovery?.authorizationServerMetadata?.issuer;
        expect(cb.cbInfo.state_matches, 'callback state equals the state sent');
        expect(cb.iss !== null && cb.iss !== undefined, 'callback carries iss (RFC 9207)');
        expect(cb.iss === iss, 'callback iss equals the AS metadata issuer (RFC 9207)', { iss: cb.iss, issuer: iss });
        expect(cb.seen.signIn === 1, 'a sign-in page was shown');
        expect(cb.seen.consent === 1, 'a consent page was shown');
        expect(cb.cbInfo.consent_shows_client_name, 'the consent page names the client');
        if (args.cimd) expect(docServer.state.hits >= 1, 'the AS fetched the client ID metadata document', { fetches: docServer.state.hits });

        // 2. finishAuth exchanges the code (PKCE, resource) for tokens.
        await transport.finishAuth(cb.code);
        expect(provider.tokenSaves === 1, 'finishAuth saved tokens');
        const granted = (provider.tokens()?.scope ?? '').split(' ').filter(Boolean);
        emit({ step: 'authorized', scope: granted.join(' ') });
        expect(!granted.includes(DENIED_TOOL.scope), `the token does not carry ${DENIED_TOOL.scope}`, { scope: granted.join(' ') });
        await transport.close().catch(() => {});

        // 3. Reconnect with the token.
        transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: fetchFn });
        client = new Client({ name: 'regwatch-interop', version: '0.1.0' });
        await client.connect(transport);
        emit({ step: 'connected', server: client.getServerVersion(), protocol: transport.protocolVersion });

        // 4. tools/list
        const tools = await client.listTools();
        const names = tools.tools.map(t => t.name);
        emit({ step: 'tools', names });
        expect(names.includes(ALLOWED_TOOL.name), `tools/list includes ${ALLOWED_TOOL.name}`);

        // 5. An allowed call.
        const challengesBefore = challenges.length;
        const allowedArgs = argumentsFor(tools.tools.find(t => t.name === ALLOWED_TOOL.name), ALLOWED_TOOL.arguments);
        try {
            const r = await client.callTool({ name: ALLOWED_TOOL.name, arguments: allowedArgs });
            emit({ step: 'tool', name: ALLOWED_TOOL.name, ok: r.isError !== true, is_error: r.isError === true, text: contentText(r) });
            expect(r.isError !== true, `${ALLOWED_TOOL.name} succeeds`);
        } catch (e) {
            const c = challenges.slice(challengesBefore).find(x => x.status === 403 || x.status === 401);
            const p = challengeParams(c?.wwwAuthenticate);
            emit({ step: 'tool', name: ALLOWED_TOOL.name, ok: false, status: c?.status, error: p.error, scope: p.scope, refreshed: provider.tokenSaves > 1, sdk_error: describe(e) });
            expect(false, `${ALLOWED_TOOL.name} succeeds`);
        }

        // 6. A call that needs a scope the user did not grant.
        const before = challenges.length;
        try {
            const r = await client.callTool({ name: DENIED_TOOL.name, arguments: DENIED_TOOL.arguments });
            emit({ step: 'tool', name: DENIED_TOOL.name, ok: true, is_error: r.isError === true });
            expect(false, `${DENIED_TOOL.name} is refused`);
        } catch (e) {
            const c403 = challenges.slice(before).find(c => c.status === 403);
            const p = challengeParams(c403?.wwwAuthenticate);
            emit({
                step: 'tool',
                name: DENIED_TOOL.name,
                ok: false,
                status: c403?.status ?? (e instanceof StreamableHTTPError ? e.code : undefined),
                error: p.error,
                scope: p.scope,
                resource_metadata: p.resource_metadata,
                step_up: provider.stepUp ? 'declined by the user' : 'not attempted',
                refreshed: provider.tokenSaves > 1,
                sdk_error: describe(e)
            });
            expect(c403 !== undefined, `${DENIED_TOOL.name} answered HTTP 403`);
            expect(p.error === 'insufficient_scope', '403 challenge error is insufficient_scope', { error: p.error });
            expect((p.scope ?? '').split(' ').includes(DENIED_TOOL.scope), `403 challenge scope names ${DENIED_TOOL.scope}`, { scope: p.scope });
            expect(Boolean(p.resource_metadata), '403 challenge names resource_metadata');
            expect(e instanceof StepUpRefused || e instanceof StreamableHTTPError, 'the SDK surfaced the refusal (declined step-up or 403)', { error: describe(e) });
        }
        await transport.close().catch(() => {});
        return finish(0);
    } finally {
        for (const c of cleanups) c();
    }
}

/**
 * `wanted` adapted to the tool's input schema: `id` as given, and the value
 * put under the schema's one other required string property when the schema
 * does not have `value` (regwatch's `update_item` calls it `text`).
 */
function argumentsFor(tool, wanted) {
    const props = tool?.inputSchema?.properties ?? {};
    if ('value' in props || !tool) return wanted;
    const other = (tool.inputSchema.required ?? []).filter(k => k !== 'id' && props[k]?.type === 'string');
    if (other.length !== 1) return wanted;
    emit({ step: 'tool_arguments', name: tool.name, value_field: other[0] });
    return { id: wanted.id, [other[0]]: wanted.value };
}

/** The text parts of a tool result, shortened (tool output is not secret here). */
function contentText(r) {
    return (r.content ?? [])
        .filter(c => c.type === 'text')
        .map(c => c.text)
        .join(' ')
        .slice(0, 300);
}

function describe(e) {
    if (!e) return undefined;
    return `${e.constructor?.name ?? 'Error'}: ${String(e.message).slice(0, 300)}`;
}

const watchdog = setTimeout(() => {
    emit({ step: 'error', error: `timed out after ${TIMEOUT_MS} ms` });
    failures.push('timeout');
    finish(1);
}, TIMEOUT_MS);
watchdog.unref();

main().catch(e => {
    emit({ step: 'error', error: describe(e) });
    failures.push(describe(e));
    finish(1);
});
