// Reads TOTAL records of the alert topic with kafkajs (no extra codecs)
// and prints {"key": ..., "value": <the record's JSON>} per record.
// Usage: node kafkajs-alerts.js BROKER TOPIC TOTAL
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, totalArg] = process.argv.slice(2);
const total = Number(totalArg);

async function main() {
  const kafka = new Kafka({ clientId: 'kafkajs-alerts', brokers: [broker], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: 'kafkajs-alerts-' + process.pid });
  consumer.on(consumer.events.CRASH, (e) => { console.error('consumer crashed:', String(e.payload.error)); process.exit(4); });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  const timer = setTimeout(() => { console.error(`timeout after ${seen} of ${total} records`); process.exit(3); }, 120000);
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        try {
          const value = JSON.parse(message.value.toString('utf8'));
          process.stdout.write(JSON.stringify({ key: message.key.toString('utf8'), value }) + '\n');
        } catch (e) { reject(e); }
        if (++seen === total) resolve();
      },
    }).catch(reject);
  });
  clearTimeout(timer);
  await consumer.disconnect();
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(2); });
