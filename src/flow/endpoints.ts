import { ConnectionTable, KEY_WORDS } from './table.js';
import type { ConnectionEnds } from './roles.js';

const KEY_FAMILY = 4;
const KEY_PORT = 8;

/**
 * Dense ids (0, 1, 2...) for endpoints (address and port, or address alone), looked up by number: aggregates per server
 * are kept in arrays indexed by them, so the hundred thousand connections of a large capture do not
 * each format an address into a string key on their way out.
 */
export class EndpointIndex {
  private readonly table = new ConnectionTable();
  private readonly key = new Uint32Array(KEY_WORDS);

  /**
   * At most `capacity` endpoints get an id; later ones get -1, so memory stays bounded. With
   * `byAddress`, the port is left out: one id per address.
   */
  constructor(
    private readonly capacity: number,
    private readonly byAddress = false,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** The id of the endpoint on `side` of `connection`, given one if it is new; -1 once the index is full. */
  idOf(connection: ConnectionEnds, side: 0 | 1): number {
    const key = this.key;
    const address = side === 0 ? connection.addressA : connection.addressB;
    key[0] = address[0]!;
    key[1] = address[1]!;
    key[2] = address[2]!;
    key[3] = address[3]!;
    key[KEY_FAMILY] = connection.family;
    key[KEY_PORT] = this.byAddress ? 0 : side === 0 ? connection.portA : connection.portB;
    const id = this.table.find(key);
    if (id >= 0 || this.table.size >= this.capacity) return id;
    return this.table.insert(key);
  }
}
