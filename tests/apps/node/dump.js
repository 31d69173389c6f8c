// Reads every record of `topic` from the beginning (a fresh group of its own) into `out` as JSON lines;
// stops once it holds `expected` records and no more arrives for `idle_ms` (extra records show up).
'use strict';
const fs = require('fs');
const { config, client, describe, say } = require('./common');

async function main() {
  const cfg = config();
  const consumer = client(cfg, 'dump').consumer({
    groupId: cfg.group, sessionTimeout: cfg.session_timeout_ms, rebalanceTimeout: cfg.session_timeout_ms,
    heartbeatInterval: 200, maxWaitTimeInMs: 200,
  });
  const records = [];
  let last = Date.now();
  await consumer.connect();
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) { say({ crashed: String(payload.error) }); process.exit(3); }
  });
  await consumer.subscribe({ topic: cfg.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic, partition, message }) => {
      records.push(describe(topic, partition, message));
      last = Date.now();
    },
  });
  const deadline = Date.now() + cfg.timeout_ms;
  while (Date.now() < deadline && !(records.length >= cfg.expected && Date.now() - last > cfg.idle_ms)) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await consumer.disconnect();
  fs.writeFileSync(cfg.out, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
  say({ dumped: records.length });
}

main().catch((err) => { console.error(err); process.exit(1); });
