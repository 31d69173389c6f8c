// A consumer-group application: processes each event once (appends it to `out`, a JSON line) and then
// commits the next offset synchronously, one event at a time (autoCommit off). After `max` events it stops
// taking more and leaves the group; SIGTERM makes it finish the current event and leave the group.
'use strict';
const fs = require('fs');
const { config, client, describe, say } = require('./common');

async function main() {
  const cfg = config();
  const consumer = client(cfg, 'workflow-app').consumer({
    groupId: cfg.group, sessionTimeout: cfg.session_timeout_ms, rebalanceTimeout: cfg.session_timeout_ms,
    heartbeatInterval: 200, maxWaitTimeInMs: 200, retry: { retries: 8 },
  });
  const out = fs.openSync(cfg.out, 'a');
  let processed = 0;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await consumer.disconnect();
    fs.closeSync(out);
    say({ stopped: true, processed });
    process.exit(0);
  };
  await consumer.connect();
  await consumer.subscribe({ topic: cfg.topic, fromBeginning: true });
  consumer.on(consumer.events.GROUP_JOIN, () => say({ joined: cfg.group }));
  // kafkajs gives up on an error it cannot retry (an unknown codec, say) and would leave an idle process
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) { say({ crashed: String(payload.error) }); process.exit(3); }
  });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 1,
    eachMessage: async ({ topic, partition, message, pause }) => {
      if (stopping || (cfg.max !== null && processed >= cfg.max)) {
        pause();  // not processed, not committed: the group's next run starts here
        return;
      }
      fs.writeSync(out, JSON.stringify(describe(topic, partition, message)) + '\n');
      fs.fsyncSync(out);
      await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
      processed += 1;
      if (cfg.max !== null && processed >= cfg.max) setImmediate(stop);
    },
  });
  process.on('SIGTERM', () => { setImmediate(stop); });
}

main().catch((err) => { console.error(err); process.exit(1); });
