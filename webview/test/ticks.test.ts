import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tickLabels } from '../src/dashboard/ticks';

describe('dashboard axis ticks', () => {
  it('uses the fewest decimals that keep every tick distinct and exact', () => {
    assert.deepEqual(tickLabels([11, 11.5, 12], 'number'), ['11.0', '11.5', '12.0']);
    assert.deepEqual(tickLabels([0, 25, 50, 75, 100], 'number'), ['0', '25', '50', '75', '100']);
    assert.deepEqual(tickLabels([0, 0.25, 0.5, 0.75], 'number'), ['0.00', '0.25', '0.50', '0.75']);
    assert.deepEqual(tickLabels([-0.1, 0, 0.1], 'number'), ['-0.1', '0.0', '0.1']);
  });

  it('shows fractions as percentages', () => {
    assert.deepEqual(tickLabels([0, 0.2, 0.4, 0.6000000000000001, 0.8, 1], 'percent'), ['0%', '20%', '40%', '60%', '80%', '100%']);
    assert.deepEqual(tickLabels([0.1, 0.125, 0.15], 'percent'), ['10.0%', '12.5%', '15.0%']);
  });
});
