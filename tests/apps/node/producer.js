// A workflow producer: `count` events into `topic`, round-robin over its partitions, each with headers
// (a repeated key among them) and an explicit CreateTime; acks=all, idempotent unless `idempotent` is false
// (Tansu refuses kafkajs' InitProducerId). Prints one line when done.
'use strict';
const { config, client, say } = require('./common');

async function main() {
  const cfg = config();
  const producer = client(cfg, 'workflow-producer').producer({ idempotent: cfg.idempotent !== false, maxInFlightRequests: 1 });
  await producer.connect();
  const base = cfg.base_timestamp;
  for (let start = 0; start < cfg.count; start += 100) {
    const messages = [];
    for (let i = start; i < Math.min(cfg.count, start + 100); i++) {
      messages.push({
        partition: i % cfg.partitions,
        key: `wf-${i % 7}`,
        value: `event-${i}`,
        timestamp: String(base + i * 13),
        headers: { 'event-id': String(i), agent: i % 3 === 0 ? ['planner', 'critic'] : 'planner' },
      });
    }
    await producer.send({ topic: cfg.topic, acks: -1, messages });
  }
  await producer.disconnect();
  say({ produced: cfg.count });
}

main().catch((err) => { console.error(err); process.exit(1); });
