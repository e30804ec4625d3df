import { EventRecorder } from '../../../src/kube/events.js';
import { makeLogger } from '../../../src/util/log.js';
import { createNamespace, kubeConfig } from '../../support/kube.js';
import { createPool, getPool, listEvents } from '../../support/objects.js';

it('aggregates repeats of an event into one Event with a count, as client-go’s recorder does', async () => {
  const ns = await createNamespace('events');
  await createPool(ns, 'p', { endpoints: [{ address: '10.9.0.1:80' }], match: { services: ['x.Y'] } });
  const pool = await getPool(ns, 'p');
  const rec = new EventRecorder(kubeConfig(), 'sibyl-operator', makeLogger('test', 'silent'));
  const obj = {
    apiVersion: 'sibyl.dev/v1alpha1',
    kind: 'BackendPool',
    name: 'p',
    namespace: ns,
    uid: pool.metadata.uid,
  };
  for (let i = 0; i < 3; i++)
    await rec.record(obj, 'Warning', 'BreakerOpened', 'b1 failed on 2 of 2 routers');
  await rec.record(obj, 'Normal', 'BreakerClosed', 'b1 closed');
  const events = await listEvents(ns, 'p');
  const opened = events.filter((e) => e.reason === 'BreakerOpened');
  expect(opened).toHaveLength(1);
  expect(opened[0]?.count).toBe(3);
  expect(opened[0]?.involvedObject.uid).toBe(pool.metadata.uid);
  expect(events.filter((e) => e.reason === 'BreakerClosed')).toHaveLength(1);
});
