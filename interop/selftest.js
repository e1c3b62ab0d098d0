#!/usr/bin/env node
// Self-test of peer.js, JS against JS (no keyline involved): checks that the
// Node side of the interop harness works on this machine before keyline's
// tests rely on it. Usage: node selftest.js   (prints "N passed, N failed")
'use strict'

var spawn = require('child_process').spawn
var path = require('path')

var PEER = path.join(__dirname, 'peer.js')
var NET = 'd4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb'
var SERVER_SEED = '11'.repeat(32)
var CLIENT_SEED = '22'.repeat(32)

// Spawn peer.js; resolves to {code, lines}; `onLine` sees each JSON line.
function runPeer (args, onLine) {
  return new Promise(function (resolve) {
    var p = spawn(process.execPath, [PEER].concat(args), { stdio: ['ignore', 'pipe', 'inherit'] })
    var buf = ''
    var lines = []
    p.stdout.on('data', function (d) {
      buf += d
      var i
      while ((i = buf.indexOf('\n')) >= 0) {
        var obj = JSON.parse(buf.slice(0, i))
        buf = buf.slice(i + 1)
        lines.push(obj)
        if (onLine) onLine(obj)
      }
    })
    p.on('close', function (code) { resolve({ code: code, lines: lines }) })
  })
}

// Start a server, then a client against it; resolves to {server, client}.
function runPair (serverArgs, clientArgs, clientOverrides) {
  var listening
  var ready = new Promise(function (resolve) { listening = resolve })
  var server = runPeer(['server', '--net', NET, '--seed', SERVER_SEED].concat(serverArgs), function (o) {
    if (o.event === 'listening') listening(o)
  })
  return ready.then(function (l) {
    var o = Object.assign({ port: String(l.port), pk: l.pk }, clientOverrides || {})
    var client = runPeer(['client', '--net', NET, '--seed', CLIENT_SEED, '--port', o.port,
      '--server-pk', o.pk].concat(clientArgs))
    return Promise.all([server, client])
  }).then(function (r) { return { server: r[0], client: r[1] } })
}

function ev (result, name) {
  return result.lines.filter(function (l) { return l.event === name })[0]
}

function check (cond, what) { if (!cond) throw new Error(what) }

var tests = [
  ['echo server, send client', function () {
    return runPair(['--mode', 'echo'], ['--mode', 'send']).then(function (r) {
      var sh = ev(r.server, 'handshake')
      var ch = ev(r.client, 'handshake')
      var rec = ev(r.client, 'received')
      check(r.server.code === 0 && r.client.code === 0, 'exit codes ' + r.server.code + '/' + r.client.code)
      check(sh.encryptKey === ch.decryptKey && sh.decryptKey === ch.encryptKey, 'keys do not match')
      check(sh.encryptNonce === ch.decryptNonce && sh.decryptNonce === ch.encryptNonce, 'nonces do not match')
      check(sh.remote === CLIENT_SEED_PK() && ch.remote === ev(r.server, 'listening').pk, 'remote keys')
      check(rec.bytes === 1060865 && rec.sha256 === rec.sent_sha256, 'echo mismatch')
      check(rec.sha256 === '6d1843f1de7d4fd034ce65228f119434d483b72df9324151d11cd6df0b66eff6', 'payload hash')
    })
  }],
  ['send both ways', function () {
    return runPair(['--mode', 'send', '--payloads', '5,10000,0,70000'], ['--mode', 'send']).then(function (r) {
      var s = ev(r.server, 'received')
      var c = ev(r.client, 'received')
      check(r.server.code === 0 && r.client.code === 0, 'exit codes')
      check(s.sha256 === c.sent_sha256 && s.bytes === c.sent_bytes, 'server received wrong data')
      check(c.sha256 === s.sent_sha256 && c.bytes === s.sent_bytes, 'client received wrong data')
    })
  }],
  ['deny', function () {
    return runPair(['--mode', 'deny'], ['--mode', 'send']).then(function (r) {
      check(r.server.code === 1 && r.client.code === 1, 'exit codes')
      check(ev(r.server, 'authorize').accepted === false, 'authorize line')
      check(/phase 3/.test(ev(r.client, 'done').error), 'client error: ' + ev(r.client, 'done').error)
    })
  }],
  ['wrong network key', function () {
    return runPair(['--mode', 'echo'], ['--mode', 'send', '--net', 'ee'.repeat(32)]).then(function (r) {
      check(r.server.code === 1 && r.client.code === 1, 'exit codes')
      check(/phase 1/.test(ev(r.client, 'done').error), 'client error')
    })
  }]
]

var clientPk = null
function CLIENT_SEED_PK () {
  if (!clientPk) {
    clientPk = require('chloride').crypto_sign_seed_keypair(Buffer.from(CLIENT_SEED, 'hex')).publicKey.toString('hex')
  }
  return clientPk
}

var passed = 0
var failed = 0
tests.reduce(function (prev, t) {
  return prev.then(function () {
    var t0 = Date.now()
    return t[1]().then(function () {
      passed++
      console.log('ok   ' + t[0] + ' (' + (Date.now() - t0) + ' ms)')
    }, function (err) {
      failed++
      console.log('FAIL ' + t[0] + ': ' + err.message)
    })
  })
}, Promise.resolve()).then(function () {
  console.log(passed + ' passed, ' + failed + ' failed')
  process.exit(failed ? 1 : 0)
})
