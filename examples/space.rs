fn main() {
    let path = std::env::args().nth(1).unwrap();
    let db = sled::Config::new().path(&path).open().unwrap();
    let mut by: std::collections::BTreeMap<u8, (u64, u64, u64)> = Default::default();
    for item in db.iter() {
        let (k, v) = item.unwrap();
        let e = by.entry(k[0]).or_default();
        e.0 += 1;
        e.1 += k.len() as u64;
        e.2 += v.len() as u64;
    }
    for (f, (n, k, v)) in by {
        println!("{} keys {n} key bytes {k} value bytes {v}", f as char);
    }
    println!("size_on_disk {}", db.size_on_disk().unwrap());
}
