// `Storage` in the browser's IndexedDB: one database per origin (so per server), with the
// profile, the MLS group states, the KeyPackages' private keys and the local history. It all
// stays in the origin's storage; logging out keeps it (the device's identity and groups), and
// `forget` deletes it.

import type { Message } from "./content.js";
import type { Profile, Storage, StoredKeyPackage } from "./storage.js";

export const DATABASE = "securevox";
const VERSION = 1;
const STORES = ["profile", "groups", "keyPackages", "messages"] as const;
type StoreName = (typeof STORES)[number];

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => {
      resolve(request.result);
    };
    request.onerror = () => {
      reject(request.error ?? new Error("IndexedDB request failed"));
    };
  });
}

export class IndexedDbStorage implements Storage {
  private constructor(
    private readonly db: IDBDatabase,
    private readonly factory: IDBFactory,
    private readonly name: string,
  ) {}

  /** Opens (creating if needed) the database `name`. */
  static async open(name = DATABASE, factory: IDBFactory = indexedDB): Promise<IndexedDbStorage> {
    const request = factory.open(name, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      for (const store of STORES) {
        if (db.objectStoreNames.contains(store)) continue;
        if (store === "messages") {
          db.createObjectStore(store, { autoIncrement: true }).createIndex("conversation", "conversationId");
        } else {
          db.createObjectStore(store);
        }
      }
    };
    return new IndexedDbStorage(await done(request), factory, name);
  }

  /** Closes the database and deletes everything in it. */
  async forget(): Promise<void> {
    this.db.close();
    await done(this.factory.deleteDatabase(this.name));
  }

  close(): void {
    this.db.close();
  }

  private async get<T>(store: StoreName, key: IDBValidKey): Promise<T | undefined> {
    const tx = this.db.transaction(store, "readonly");
    return (await done(tx.objectStore(store).get(key))) as T | undefined;
  }

  private async write(store: StoreName, work: (s: IDBObjectStore) => IDBRequest): Promise<void> {
    const tx = this.db.transaction(store, "readwrite");
    work(tx.objectStore(store));
    // Durable once the transaction commits, not when the request succeeds.
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => {
        resolve();
      };
      tx.onerror = () => {
        reject(tx.error ?? new Error("IndexedDB transaction failed"));
      };
      tx.onabort = () => {
        reject(tx.error ?? new Error("IndexedDB transaction aborted"));
      };
    });
  }

  loadProfile(): Promise<Profile | undefined> {
    return this.get<Profile>("profile", "profile");
  }

  saveProfile(profile: Profile): Promise<void> {
    return this.write("profile", (s) => s.put(structuredClone(profile), "profile"));
  }

  async loadGroup(id: string): Promise<Uint8Array | undefined> {
    const state = await this.get<Uint8Array>("groups", id);
    return state === undefined ? undefined : new Uint8Array(state);
  }

  saveGroup(id: string, state: Uint8Array): Promise<void> {
    return this.write("groups", (s) => s.put(state.slice(), id));
  }

  deleteGroup(id: string): Promise<void> {
    return this.write("groups", (s) => s.delete(id));
  }

  async groupIds(): Promise<string[]> {
    const tx = this.db.transaction("groups", "readonly");
    const keys = await done(tx.objectStore("groups").getAllKeys());
    return keys.map(String);
  }

  loadKeyPackage(ref: string): Promise<StoredKeyPackage | undefined> {
    return this.get<StoredKeyPackage>("keyPackages", ref);
  }

  saveKeyPackage(ref: string, keyPackage: StoredKeyPackage): Promise<void> {
    return this.write("keyPackages", (s) => s.put(structuredClone(keyPackage), ref));
  }

  deleteKeyPackage(ref: string): Promise<void> {
    return this.write("keyPackages", (s) => s.delete(ref));
  }

  appendMessage(message: Message): Promise<void> {
    return this.write("messages", (s) => s.add(structuredClone(message)));
  }

  async messages(id?: string): Promise<Message[]> {
    const tx = this.db.transaction("messages", "readonly");
    const store = tx.objectStore("messages");
    // Keys grow with every append: both ways give the history oldest first.
    const all = id === undefined ? store.getAll() : store.index("conversation").getAll(id);
    return (await done(all)) as Message[];
  }
}
