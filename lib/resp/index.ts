/**
 * lib/resp: the Redis commands a node answers on its RESP port (DESIGN.md §6 "front doors"),
 * mapped onto the same coordinator as /client. Layer 5, beside the supervisor: the listener
 * (sockets, parsing, ordering, bounds) is lib/transport/resp-listener.ts, the codec is
 * lib/protocol/resp-*.ts; this folder is what each command means.
 */
export { RespService } from './resp-service.js';
export { commands } from './command-table.js';
export type { RespNodeInfo, RespOperations, RespRead, RespWriteOptions } from './resp-operations.js';
