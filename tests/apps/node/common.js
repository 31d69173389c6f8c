// Shared by the kafkajs applications: the client built from a JSON argument, log lines on stdout.
'use strict';
process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
const { Kafka, logLevel } = require('kafkajs');

function config() {
  return JSON.parse(process.argv[2]);
}

function client(cfg, clientId) {
  return new Kafka({ clientId, brokers: cfg.brokers.split(','), logLevel: logLevel.ERROR,
                     retry: { retries: 8, initialRetryTime: 100 } });
}

// Headers as [key, value] pairs in order; kafkajs gives a repeated key as an array of Buffers.
function headerPairs(headers) {
  const pairs = [];
  for (const [key, value] of Object.entries(headers || {})) {
    for (const one of Array.isArray(value) ? value : [value]) {
      pairs.push([key, one === null || one === undefined ? null : one.toString('utf8')]);
    }
  }
  return pairs;
}

function describe(topic, partition, message) {
  return { topic, partition, offset: Number(message.offset), timestamp: Number(message.timestamp),
           key: message.key === null ? null : message.key.toString('utf8'),
           value: message.value === null ? null : message.value.toString('utf8'),
           headers: headerPairs(message.headers) };
}

function say(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

module.exports = { config, client, describe, say };
