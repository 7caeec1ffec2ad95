import mongoose, { type Connection, type Model, type Schema } from 'mongoose';
import { profileCommands } from './db-profile';

// Claims rely on unique indexes existing before the first write; never build them lazily.
mongoose.set('autoIndex', false);
mongoose.set('strictQuery', true);

/** One connection per service database. Resolves once connected and every model's indexes exist. */
export async function connectMongo(url: string, dbName: string): Promise<Connection> {
  const conn = mongoose.createConnection(url, {
    dbName,
    serverSelectionTimeoutMS: 5_000,
    maxPoolSize: 20,
    monitorCommands: Boolean(process.env.DB_PROFILE_DIR),
  });
  profileCommands(conn, dbName, process.env.DB_PROFILE_DIR);
  await conn.asPromise();
  return conn;
}

/** Creates the indexes of every model registered on the connection (idempotent). */
export async function ensureIndexes(conn: Connection): Promise<void> {
  for (const model of Object.values(conn.models)) await model.createIndexes();
}

export const mongoReady = (conn: Connection) => conn.readyState === 1;

/** The connection's model of that name, made on first use (the kit and a service's modules share one connection). */
export function modelOn<T>(db: Connection, name: string, schema: Schema<T>, collection: string): Model<T> {
  return (db.models[name] as Model<T> | undefined) ?? db.model<T>(name, schema, collection);
}
