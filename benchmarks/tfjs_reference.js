// Runs nsfwjs' MobileNetV2 in TF.js (CPU backend) on raw float32 crops; prints JSON features.
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const [dir, crops, n, size] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5]];
const topo = require(dir + '/model.min.js');
const b64 = require(dir + '/group1-shard1of1.min.js');
const layers = process.argv.slice(6);
(async () => {
  await tf.setBackend('cpu');
  const buf = Buffer.from(b64, 'base64');
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  const specs = topo.weightsManifest.flatMap(g => g.weights);
  const model = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: topo.modelTopology, weightSpecs: specs, weightData}));
  const sub = tf.model({inputs: model.inputs, outputs: layers.map(l => model.getLayer(l).output)});
  const raw = fs.readFileSync(crops);
  const x = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, n * size * size * 3), [n, size, size, 3]);
  const outs = sub.predict(x);
  const res = {};
  layers.forEach((l, i) => { res[l] = {shape: outs[i].shape, data: Array.from(outs[i].dataSync())}; });
  fs.writeFileSync(process.argv[2] + '/../out.json', JSON.stringify(res));
})();
