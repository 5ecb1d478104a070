// Runs a TF.js graph model (CPU backend) on raw float32 NHWC inputs; writes the asked nodes as JSON.
// node tfjs_graph_reference.js MODEL.json WEIGHTS.bin INPUT.f32 N SIZE OUT.json NODE...
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const [json, bin, input, n, size, out] = process.argv.slice(2, 8);
const nodes = process.argv.slice(8);
(async () => {
  await tf.setBackend('cpu');
  const model = JSON.parse(fs.readFileSync(json, 'utf8'));
  const buf = fs.readFileSync(bin);
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  const weightSpecs = model.weightsManifest.flatMap(g => g.weights);
  const graph = await tf.loadGraphModel(tf.io.fromMemory({modelTopology: model.modelTopology, weightSpecs, weightData, format: 'graph-model'}));
  const raw = fs.readFileSync(input);
  const x = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, +n * +size * +size * 3), [+n, +size, +size, 3]);
  const outs = graph.execute(x, nodes);
  const res = {};
  nodes.forEach((name, i) => { res[name] = {shape: outs[i].shape, data: Array.from(outs[i].dataSync())}; });
  fs.writeFileSync(out, JSON.stringify(res));
})();
