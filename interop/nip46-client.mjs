#!/usr/bin/env node
// keyline interop: a NIP-46 client built on npm `nostr-tools` (`nip46.BunkerSigner`), so that
// keyline's Rust tests can drive a real third-party client against the bunker (signer.md §3.9,
// §16 item 18). Written for keyline (MIT); it only uses nostr-tools' public API.
//
// Usage (see README.md):
//
//   node nip46-client.mjs --bunker-uri 'bunker://…' --steps connect,get_public_key,sign_event
//   node nip46-client.mjs --nostrconnect --relay ws://127.0.0.1:PORT [--relay …] --steps …
//
// stdout carries JSON lines only:
//   {"nostrconnect":"nostrconnect://…","client_pubkey":"<hex>"}   --nostrconnect, first line, once
//                                                                  the client listens on its relays
//   {"client_pubkey":"<hex>"}                                      --bunker-uri, first line
//   {"auth_url":"<url>","step":"<step>"}                           whenever the bunker sends auth_url
//   {"step":"<step>","ok":true,"result":…}                         one per step, in order
//   {"step":"<step>","ok":false,"error":"<text>"}
//   {"done":true,"steps":N,"failed":M}                             last
// Diagnostics go to stderr.
//
// Exit code: 0 when every step ran (whether it succeeded or not: the caller asserts), 1 on a
// harness failure (uncaught exception, --max-time), 2 on usage errors.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const HELP = `usage: node nip46-client.mjs (--bunker-uri URI | --nostrconnect --relay URL [--relay URL…])
                           --steps STEP[,STEP…] [options]

steps (run in order; STEP:ARG where shown):
  connect              connect with the URI's secret (with --client-name: nostr-tools sends metadata)
  get_public_key       the user key (must differ from the bunker key in the URI)
  sign_event[:KIND]    sign {kind (default 1), content, tags, created_at}; checked with verifyEvent
  nip44                nip44_encrypt/nip44_decrypt round trip with a third party, cross-checked
                       locally with the third party's key
  nip04                the same with nip04_encrypt/nip04_decrypt
  ping                 expects "pong"
  switch_relays        raw result of switch_relays
  logout               expects "ack"; the signer is closed afterwards
  reopen               a new BunkerSigner with the same client key and bunker (after logout)
  raw:METHOD           send METHOD with no params, report the raw result or error
  sleep:MS             wait MS milliseconds

options:
  --bunker-uri URI       signer-initiated flow (bunker://…)
  --nostrconnect         client-initiated flow: print the nostrconnect:// URI first, wait for the bunker
  --relay URL            relay of the nostrconnect:// URI (repeatable)
  --secret S             secret of the nostrconnect:// URI (default: random)
  --perms LIST           perms of the nostrconnect:// URI, comma separated
  --client-name NAME     name (nostrconnect:// URI; connect metadata)
  --client-secret HEX    the client's secret key (default: random)
  --peer-secret HEX      the third party's secret key for nip44/nip04 (default: random)
  --message TEXT         plaintext for nip44/nip04 (default contains non-ASCII)
  --timeout MS           per step, also the nostrconnect handshake (default 30000)
  --max-time MS          the whole run (default 300000)
  --help`

process.on('uncaughtException', (e) => {
  process.stderr.write(`nip46-client: uncaught exception: ${e?.stack ?? e}\n`)
  process.exit(1)
})
// nostr-tools leaves some relay promises unobserved (a failed publish or connection to one of
// several relays); that is not a harness failure.
process.on('unhandledRejection', (e) => {
  process.stderr.write(`nip46-client: unhandled rejection (ignored): ${e?.message ?? e}\n`)
})

// ----- arguments ---------------------------------------------------------------------------------

function usage (msg) {
  process.stderr.write(`nip46-client: ${msg}\n${HELP}\n`)
  process.exit(2)
}

function parseArgs (argv) {
  const o = { relays: [], steps: [], timeout: 30000, maxTime: 300000, message: 'keyline interop: héllo ✓ 🔑 "quoted"\n' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    switch (a) {
      case '--help': case '-h': process.stdout.write(HELP + '\n'); process.exit(0); break
      case '--bunker-uri': o.bunkerUri = val(); break
      case '--nostrconnect': o.nostrconnect = true; break
      case '--relay': o.relays.push(val()); break
      case '--secret': o.secret = val(); break
      case '--perms': o.perms = val(); break
      case '--client-name': o.clientName = val(); break
      case '--client-secret': o.clientSecret = val(); break
      case '--peer-secret': o.peerSecret = val(); break
      case '--message': o.message = val(); break
      case '--steps': o.steps = val().split(',').map(s => s.trim()).filter(Boolean); break
      case '--timeout': o.timeout = Number(val()); break
      case '--max-time': o.maxTime = Number(val()); break
      default: usage(`unknown argument ${a}`)
    }
  }
  if (!!o.bunkerUri === !!o.nostrconnect) usage('give exactly one of --bunker-uri and --nostrconnect')
  if (o.nostrconnect && o.relays.length === 0) usage('--nostrconnect needs at least one --relay')
  if (!o.nostrconnect && o.relays.length > 0) usage('--relay is for --nostrconnect (bunker relays come from the URI)')
  if (!(o.timeout > 0) || !(o.maxTime > 0)) usage('--timeout and --max-time must be positive numbers')
  for (const k of ['clientSecret', 'peerSecret']) {
    if (o[k] !== undefined && !/^[0-9a-f]{64}$/.test(o[k])) usage(`--${k.replace('S', '-s')} must be 64 lowercase hex`)
  }
  const known = /^(connect|get_public_key|sign_event(:\d+)?|nip44|nip04|ping|switch_relays|logout|reopen|raw:[\w.-]+|sleep:\d+)$/
  for (const s of o.steps) if (!known.test(s)) usage(`unknown step ${s}`)
  if (o.steps.length === 0) usage('--steps is required')
  return o
}

const opts = parseArgs(process.argv.slice(2))

// nostr-tools' nip46 bundle carries its own relay pool, which uses the global WebSocket (its
// `useWebSocketImplementation` does not reach that copy). Node < 22 has WebSocket only behind
// a flag: run again with it.
if (typeof globalThis.WebSocket === 'undefined') {
  if (process.env.KEYLINE_NIP46_REEXEC) {
    process.stderr.write('nip46-client: no WebSocket implementation in this Node.js\n')
    process.exit(1)
  }
  const child = spawn(process.execPath,
    ['--experimental-websocket', '--no-warnings', ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, KEYLINE_NIP46_REEXEC: '1' } })
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
} else {
  await main(opts)
}

// ----- the run -----------------------------------------------------------------------------------

function out (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function errText (e) {
  if (e instanceof Error) return e.message
  if (typeof e === 'string') return e
  try { return JSON.stringify(e) } catch { return String(e) }
}

function withTimeout (promise, ms, what) {
  let timer
  const t = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms (${what})`)), ms)
  })
  return Promise.race([promise, t]).finally(() => clearTimeout(timer))
}

async function main (o) {
  const { generateSecretKey, getPublicKey, verifyEvent } = await import('nostr-tools/pure')
  const { BunkerSigner, BUNKER_REGEX, parseBunkerInput, createNostrConnectURI } = await import('nostr-tools/nip46')
  const nip44 = await import('nostr-tools/nip44')
  const nip04 = await import('nostr-tools/nip04')
  const { hexToBytes, bytesToHex } = await import('@noble/hashes/utils.js')
  const { SimplePool } = await import('nostr-tools/pool')

  // A pool that reports when a subscription is live (EOSE from its relays, or maxWait): the
  // bunker's answer to a nostrconnect:// URI is an ephemeral event that relays do not store,
  // so the URI is printed only once nostr-tools listens for it.
  class ReadyPool extends SimplePool {
    subscribe (relays, filter, params) {
      const oneose = params.oneose
      return super.subscribe(relays, filter, {
        ...params,
        oneose: () => {
          const ready = this.onReady
          this.onReady = null
          if (ready) ready()
          if (oneose) oneose()
        }
      })
    }
  }
  const pool = new ReadyPool()

  const hardStop = setTimeout(() => {
    process.stderr.write(`nip46-client: --max-time ${o.maxTime} ms exceeded\n`)
    process.exit(1)
  }, o.maxTime)

  const clientSecret = o.clientSecret ? hexToBytes(o.clientSecret) : generateSecretKey()
  const clientPubkey = getPublicKey(clientSecret)
  const peerSecret = o.peerSecret ? hexToBytes(o.peerSecret) : generateSecretKey()
  const peerPubkey = getPublicKey(peerSecret)

  let currentStep = null
  const params = {
    pool,
    onauth: (url) => out({ auth_url: url, step: currentStep })
  }

  let failed = 0
  let ran = 0
  const report = (step, ok, fields) => {
    ran++
    if (!ok) failed++
    out({ step, ok, ...fields })
  }

  let signer = null
  let bunker = null // BunkerPointer
  if (o.nostrconnect) {
    const secret = o.secret ?? bytesToHex(generateSecretKey()).slice(0, 16)
    const uri = createNostrConnectURI({
      clientPubkey,
      relays: o.relays,
      secret,
      perms: o.perms ? o.perms.split(',') : undefined,
      name: o.clientName
    })
    let printed = false
    const printUri = () => {
      if (!printed) out({ nostrconnect: uri, client_pubkey: clientPubkey })
      printed = true
    }
    pool.onReady = printUri
    currentStep = 'nostrconnect'
    try {
      const abort = AbortSignal.timeout(o.timeout)
      const connecting = BunkerSigner.fromURI(clientSecret, uri, params, abort)
      signer = await withTimeout(connecting.finally(printUri), o.timeout + 1000, 'nostrconnect')
      bunker = { ...signer.bp, relays: [...signer.bp.relays] }
      report('nostrconnect', true, { result: { bunker_pubkey: signer.bp.pubkey, relays: signer.bp.relays } })
    } catch (e) {
      report('nostrconnect', false, { error: errText(e) })
    }
  } else {
    out({ client_pubkey: clientPubkey })
    currentStep = 'parse_bunker_uri'
    // Check the regex first: parseBunkerInput falls back to a NIP-05 lookup over HTTPS.
    const pointer = BUNKER_REGEX.test(o.bunkerUri) ? await parseBunkerInput(o.bunkerUri) : null
    if (pointer && pointer.relays.length > 0) {
      bunker = pointer
      signer = BunkerSigner.fromBunker(clientSecret, { ...bunker, relays: [...bunker.relays] }, params)
    } else {
      report('parse_bunker_uri', false, { error: `nostr-tools does not accept this bunker URI (BUNKER_REGEX ${BUNKER_REGEX})` })
    }
  }

  let userPubkey = null
  const needUser = async () => {
    if (!userPubkey) userPubkey = await signer.getPublicKey()
    return userPubkey
  }

  for (const step of o.steps) {
    currentStep = step
    if (!signer) {
      report(step, false, { error: 'skipped: no session with the bunker' })
      continue
    }
    const [name, arg] = step.split(/:(.*)/s)
    try {
      const fields = await withTimeout(runStep(name, arg), o.timeout, step)
      report(step, fields.ok !== false, fields)
    } catch (e) {
      report(step, false, { error: errText(e) })
    }
  }

  async function runStep (name, arg) {
    switch (name) {
      case 'connect': {
        await signer.connect(o.clientName ? { name: o.clientName } : undefined)
        return { result: 'ack' }
      }
      case 'get_public_key': {
        userPubkey = await signer.sendRequest('get_public_key', [])
        return { result: userPubkey, differs_from_bunker: userPubkey !== signer.bp.pubkey }
      }
      case 'sign_event': {
        const template = {
          kind: arg ? Number(arg) : 1,
          content: `keyline interop ${new Date().toISOString()} ✓`,
          tags: [['t', 'keyline'], ['client', 'nostr-tools']],
          created_at: Math.floor(Date.now() / 1000)
        }
        // BunkerSigner.signEvent itself refuses an event that does not verify.
        const event = await signer.signEvent(template)
        // verifyEvent caches its verdict on the object: check a fresh copy.
        const copy = JSON.parse(JSON.stringify(event))
        const verified = verifyEvent(copy)
        const matches = copy.kind === template.kind && copy.content === template.content &&
          JSON.stringify(copy.tags) === JSON.stringify(template.tags) && copy.created_at === template.created_at
        const fields = { verified, matches_template: matches, result: copy }
        if (userPubkey) fields.by_user_key = copy.pubkey === userPubkey
        return { ok: verified && matches && fields.by_user_key !== false, ...fields }
      }
      case 'nip44':
      case 'nip04': {
        const user = await needUser()
        const enc = name === 'nip44' ? (t) => signer.nip44Encrypt(peerPubkey, t) : (t) => signer.nip04Encrypt(peerPubkey, t)
        const dec = name === 'nip44' ? (c) => signer.nip44Decrypt(peerPubkey, c) : (c) => signer.nip04Decrypt(peerPubkey, c)
        const localDec = name === 'nip44'
          ? (c) => nip44.decrypt(c, nip44.getConversationKey(peerSecret, user))
          : (c) => nip04.decrypt(peerSecret, user, c)
        const localEnc = name === 'nip44'
          ? (t) => nip44.encrypt(t, nip44.getConversationKey(peerSecret, user))
          : (t) => nip04.encrypt(peerSecret, user, t)
        const ciphertext = await enc(o.message)
        const roundtrip = (await dec(ciphertext)) === o.message
        let peerDecrypts
        try { peerDecrypts = localDec(ciphertext) === o.message } catch { peerDecrypts = false }
        const fromPeer = `${o.message} (from the peer)`
        const bunkerDecrypts = (await dec(localEnc(fromPeer))) === fromPeer
        return { ok: roundtrip && peerDecrypts && bunkerDecrypts, roundtrip, peer_decrypts: peerDecrypts, bunker_decrypts: bunkerDecrypts, result: ciphertext }
      }
      case 'ping': {
        const result = await signer.sendRequest('ping', [])
        return { ok: result === 'pong', result }
      }
      case 'switch_relays': {
        const result = await signer.sendRequest('switch_relays', [])
        return { result }
      }
      case 'logout': {
        const result = await signer.sendRequest('logout', [])
        await signer.close()
        return { ok: result === 'ack', result }
      }
      case 'reopen': {
        try { await signer.close() } catch {}
        signer = BunkerSigner.fromBunker(clientSecret, { ...bunker, relays: [...bunker.relays] }, params)
        userPubkey = null
        return { result: 'reopened' }
      }
      case 'raw': {
        const result = await signer.sendRequest(arg, [])
        return { result }
      }
      case 'sleep': {
        await new Promise(resolve => setTimeout(resolve, Number(arg)))
        return { result: null }
      }
      default:
        throw new Error(`unknown step ${name}`)
    }
  }

  out({ done: true, steps: ran, failed })
  clearTimeout(hardStop)
  try { await signer?.close() } catch {}
  // The relay pool keeps sockets open; the run is over.
  process.exit(0)
}
