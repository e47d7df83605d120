//! The example self-descriptions of `config/examples/sd/`, embedded in the binary so
//! `gaiamesh devnet` works from any directory.

/// (file name, TOML text) of every example, in name order.
pub const EXAMPLE_SDS: &[(&str, &str)] = &[
    (
        "01-nordwolke-de-nuernberg.toml",
        include_str!("../examples/sd/01-nordwolke-de-nuernberg.toml"),
    ),
    (
        "02-rheinrechen-de-frankfurt.toml",
        include_str!("../examples/sd/02-rheinrechen-de-frankfurt.toml"),
    ),
    (
        "03-seine-cloud-fr-paris.toml",
        include_str!("../examples/sd/03-seine-cloud-fr-paris.toml"),
    ),
    (
        "04-lumiere-hpc-fr-grenoble.toml",
        include_str!("../examples/sd/04-lumiere-hpc-fr-grenoble.toml"),
    ),
    (
        "05-polder-edge-nl-rotterdam.toml",
        include_str!("../examples/sd/05-polder-edge-nl-rotterdam.toml"),
    ),
    (
        "06-amstel-data-nl-amsterdam.toml",
        include_str!("../examples/sd/06-amstel-data-nl-amsterdam.toml"),
    ),
    (
        "07-nordic-hydro-se-lulea.toml",
        include_str!("../examples/sd/07-nordic-hydro-se-lulea.toml"),
    ),
    (
        "08-aurora-hpc-fi-kajaani.toml",
        include_str!("../examples/sd/08-aurora-hpc-fi-kajaani.toml"),
    ),
    (
        "09-wisla-cloud-pl-warszawa.toml",
        include_str!("../examples/sd/09-wisla-cloud-pl-warszawa.toml"),
    ),
    (
        "10-alpen-private-at-wien.toml",
        include_str!("../examples/sd/10-alpen-private-at-wien.toml"),
    ),
    (
        "11-donau-edge-at-linz.toml",
        include_str!("../examples/sd/11-donau-edge-at-linz.toml"),
    ),
    (
        "12-iberia-solar-es-madrid.toml",
        include_str!("../examples/sd/12-iberia-solar-es-madrid.toml"),
    ),
    (
        "13-tejo-cloud-pt-lisboa.toml",
        include_str!("../examples/sd/13-tejo-cloud-pt-lisboa.toml"),
    ),
    (
        "14-roma-inference-it-roma.toml",
        include_str!("../examples/sd/14-roma-inference-it-roma.toml"),
    ),
    (
        "15-lombardia-data-it-milano.toml",
        include_str!("../examples/sd/15-lombardia-data-it-milano.toml"),
    ),
    (
        "16-vltava-cloud-cz-praha.toml",
        include_str!("../examples/sd/16-vltava-cloud-cz-praha.toml"),
    ),
    (
        "17-baltic-edge-ee-tallinn.toml",
        include_str!("../examples/sd/17-baltic-edge-ee-tallinn.toml"),
    ),
    (
        "18-emerald-cloud-ie-dublin.toml",
        include_str!("../examples/sd/18-emerald-cloud-ie-dublin.toml"),
    ),
    (
        "19-bxl-gateway-be-bruxelles.toml",
        include_str!("../examples/sd/19-bxl-gateway-be-bruxelles.toml"),
    ),
    (
        "20-kobenhavn-green-dk.toml",
        include_str!("../examples/sd/20-kobenhavn-green-dk.toml"),
    ),
    (
        "21-elbflorenz-hpc-de-dresden.toml",
        include_str!("../examples/sd/21-elbflorenz-hpc-de-dresden.toml"),
    ),
    (
        "22-letzebuerg-sovereign-lu.toml",
        include_str!("../examples/sd/22-letzebuerg-sovereign-lu.toml"),
    ),
    (
        "23-attiki-edge-gr-athina.toml",
        include_str!("../examples/sd/23-attiki-edge-gr-athina.toml"),
    ),
    (
        "24-ljubljana-open-data-si.toml",
        include_str!("../examples/sd/24-ljubljana-open-data-si.toml"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_example_file_is_embedded() {
        let mut on_disk: Vec<String> = std::fs::read_dir(crate::examples_dir().join("sd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = super::EXAMPLE_SDS.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded);
    }
}
