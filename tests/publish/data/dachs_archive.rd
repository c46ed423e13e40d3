<?xml version="1.0" encoding="utf-8"?>
<!-- The test archive: a few image products, published into DaCHS' own
     ivoa.obscore with DIDs that DaCHS makes itself (getStandardPubDID:
     ivo://{authority}/~?{accref}), which vosim's test catalogue then keeps.
     DaCHS 2.7's obscore has no release date, so the product table keeps it
     (and the category); vosim's mapping file names this table. -->
<resource schema="vosim_test_archive">
  <meta name="title">vosim test archive</meta>
  <meta name="description">Image products of the vosim plugin tests.</meta>
  <meta name="creationDate">2024-01-01T00:00:00</meta>
  <meta name="subject">observational-astronomy</meta>

  <table id="images" onDisk="True" adql="True" primary="obs_publisher_did">
    <meta name="description">The archive's image products.</meta>
    <mixin
      productType="dataproduct_type"
      calibLevel="2"
      collectionName="'vosim test'"
      did="obs_publisher_did"
      obsId="obs_id"
      accessURL="access_url"
      mime="'application/fits'"
      size="NULL"
      preview="NULL"
      targetName="target_name"
      ra="s_ra"
      dec="s_dec"
      facilityName="'ALMA'"
    >//obscore#publish</mixin>
    <column name="obs_publisher_did" type="text" ucd="meta.ref.ivoid"
      description="Publisher DID of the product"/>
    <column name="obs_id" type="text" ucd="meta.id" description="Observation identifier"/>
    <column name="dataproduct_type" type="text" ucd="meta.code.class"
      description="image (continuum) or cube"/>
    <column name="access_url" type="text" ucd="meta.ref.url" description="Where the file is"/>
    <column name="target_name" type="text" ucd="meta.id;src" description="Target name"/>
    <column name="s_ra" type="double precision" unit="deg" ucd="pos.eq.ra"
      description="Right ascension of the image centre"/>
    <column name="s_dec" type="double precision" unit="deg" ucd="pos.eq.dec"
      description="Declination of the image centre"/>
    <column name="obs_release_date" type="timestamp" ucd="time.release"
      description="End of the proprietary period"/>
    <column name="scientific_category" type="text" ucd="meta.code.class"
      description="Scientific category of the proposal"/>
  </table>

  <data id="import">
    <sources>images.csv</sources>
    <csvGrammar/>
    <make table="images">
      <rowmaker idmaps="*">
        <map key="obs_publisher_did">getStandardPubDID(@accref)</map>
        <map key="obs_release_date" source="obs_release_date" nullExcs="ValueError"/>
      </rowmaker>
    </make>
  </data>
</resource>
