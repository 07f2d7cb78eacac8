// Starts kinesalite on loopback only. Its own command line listens on every
// interface and has no host option, hence these few lines.
//
//   node scripts/kinesalite.js [PORT [DIR]]
//
// With DIR, streams and records are kept there (LevelDB) rather than in
// memory, so that a test can kill kinesalite and restart it on its data.
'use strict'

const kinesalite = require('kinesalite')

const port = Number(process.argv[2] || 4567)
const server = kinesalite({
  path: process.argv[3] || undefined,
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: 1000,
})

// kinesalite throws from a request's 'error' handler when a client aborts a
// request (ECONNRESET, "aborted"), which would kill the whole server. A
// client hanging up is normal for Kinesis; keep serving.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`kinesalite: a client aborted a request (${err.message}); still serving`)
    return
  }
  console.error(err)
  process.exit(1)
})

server.listen(port, '127.0.0.1', (err) => {
  if (err) {
    console.error(`kinesalite: listen 127.0.0.1:${port}: ${err.message}`)
    process.exit(1)
  }
  console.log(`kinesalite listening on http://127.0.0.1:${port}`)
})

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)))
}
