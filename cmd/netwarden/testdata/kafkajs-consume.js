// Reads every record of a topic with kafkajs (a client netwarden did not
// write) and decodes netwarden.changes values per docs/ARCHITECTURE.md,
// printing one JSON object per record. Usage:
//   node kafkajs-consume.js BROKER TOPIC TOTAL
const { Kafka, logLevel } = require('kafkajs');

const [broker, topic, totalArg] = process.argv.slice(2);
const total = Number(totalArg);

function hex4(b, i) { return ((b[i] << 8) | b[i + 1]).toString(16); }

// RFC 5952 text of a 16-byte IPv6 address (as Go's net/netip prints it).
function ipv6(b) {
  const g = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i] << 8) | b[i + 1]);
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const parts = g.map((x) => x.toString(16));
  if (best < 0) return parts.join(':');
  return parts.slice(0, best).join(':') + '::' + parts.slice(best + bestLen).join(':');
}

// resource text of a resource key: 'i'|16-byte address|bits, 'd'|name, 'e'|name.
function resourceOf(key) {
  const kind = String.fromCharCode(key[0]);
  if (kind === 'd' || kind === 'e') return key.subarray(1).toString('utf8');
  if (kind !== 'i' || key.length !== 18) throw new Error('bad key ' + key.toString('hex'));
  const a = key.subarray(1, 17);
  let bits = key[17];
  const v4 = a.subarray(0, 10).every((x) => x === 0) && a[10] === 0xff && a[11] === 0xff && bits >= 96;
  if (v4) {
    bits -= 96;
    const s = `${a[12]}.${a[13]}.${a[14]}.${a[15]}`;
    return bits === 32 ? s : `${s}/${bits}`;
  }
  const s = ipv6(a);
  return bits === 128 ? s : `${s}/${bits}`;
}

// value: version(1) op(1) time(8, Unix µs, big endian) uvarint len + list, rest = key.
function decode(value) {
  if (value[0] !== 1) throw new Error('unknown version ' + value[0]);
  const op = value[1] === 1 ? 'add' : value[1] === 2 ? 'rem' : null;
  if (op === null) throw new Error('bad op ' + value[1]);
  const micros = value.readBigUInt64BE(2);
  let n = 0, shift = 0, i = 10;
  for (;;) {
    const c = value[i++];
    n += (c & 0x7f) * 2 ** shift;
    if (c < 0x80) break;
    shift += 7;
  }
  const list = value.subarray(i, i + n).toString('utf8');
  const key = value.subarray(i + n);
  return { op, micros: micros.toString(), list, resource: resourceOf(key), key: key.toString('hex') };
}

async function main() {
  const kafka = new Kafka({ clientId: 'kafkajs-interop', brokers: [broker], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: 'kafkajs-interop-' + process.pid });
  // A record batch kafkajs cannot decode (e.g. Snappy without a codec
  // package) crashes the consumer: fail at once with its error.
  consumer.on(consumer.events.CRASH, (e) => { console.error('consumer crashed:', String(e.payload.error)); process.exit(4); });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  const timer = setTimeout(() => { console.error(`timeout after ${seen} of ${total} records`); process.exit(3); }, 120000);
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ partition, message }) => {
        try {
          const d = decode(message.value);
          d.partition = partition;
          d.offset = message.offset;
          d.msgkey = message.key.toString('hex');
          process.stdout.write(JSON.stringify(d) + '\n');
        } catch (e) { reject(e); }
        if (++seen === total) resolve();
      },
    }).catch(reject);
  });
  clearTimeout(timer);
  await consumer.disconnect();
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(2); });
